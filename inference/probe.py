"""A tiny real inference per engine: the proof that a build runs on this machine and device.

The same warm-up serves twice:
- the running site runs it when it loads a model (inference/pool.py), so a model whose first real
  request would fail on the chosen device (a missing CUDA library, an unsupported kernel) fails at load
  instead, and falls back to the CPU with the reason shown;
- the set-up runs it in a child process (``python -m inference.probe``, driven by inference/buildcheck.py),
  because an instruction the CPU refuses kills the whole process with SIGILL and no Python exception: only
  a parent can see that happen and react (rebuild llama.cpp without the instruction set).

Text models decode a multi-token prompt (one-token prompts take other kernels than real requests);
speech-to-text transcribes one second of audio; text-to-speech speaks one short sentence.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import signal
import struct
import sys
import time
import wave
from pathlib import Path
from typing import cast

from inference.protocols import EmbeddingEngine, Engine, SpeechToTextEngine, TextEngine, TextToSpeechEngine
from inference.types import ChatMessage, EngineError, SamplingParams

PROMPT = "List three colours of the rainbow, separated by commas."
SENTENCE = "The set-up checks this voice."
FAULT_ENV = "PLAYGROUND_PROBE_FAULT"  # tests: "SIGILL" (always) or "SIGILL@native" (only for that llama build)
VARIANT_ENV = "PLAYGROUND_BUILD_VARIANT"  # which llama.cpp build the probe runs on (set by buildcheck)


class WarmUpError(EngineError):
    """The engine loaded but could not run a tiny inference."""


def tone_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A 440 Hz tone as 16-bit mono WAV: real audio for the speech-to-text warm-up."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return buffer.getvalue()


def warm_up(engine: Engine, task: str) -> str:
    """Run one tiny real inference on a loaded engine; returns what it did, raises WarmUpError if it fails.

    The task says which kind of engine it is (build_engine builds it from the same task)."""
    try:
        if task in ("text-to-text", "text-completion"):
            text = cast(TextEngine, engine)
            params = SamplingParams(temperature=0.0, max_tokens=4, seed=0)
            if task == "text-to-text" and getattr(text, "has_chat_template", False):
                stream = text.chat([ChatMessage("user", PROMPT)], params)
            else:
                stream = text.complete(PROMPT, params)
            usage = [chunk.usage for chunk in stream if chunk.usage is not None][-1]
            if usage.prompt_tokens < 2 or usage.completion_tokens < 1:
                raise WarmUpError(f"decoded {usage.completion_tokens} tokens from a {usage.prompt_tokens}-token prompt")
            return f"decoded {usage.completion_tokens} tokens after a {usage.prompt_tokens}-token prompt"
        if task == "embeddings":
            embedding = cast(EmbeddingEngine, engine).embed([PROMPT])
            if not embedding.vectors or not all(math.isfinite(v) for v in embedding.vectors[0]):
                raise WarmUpError("the embedding is empty or not finite")
            return f"embedded {embedding.usage.prompt_tokens} tokens into {len(embedding.vectors[0])} dimensions"
        if task == "speech-to-text":
            transcript = cast(SpeechToTextEngine, engine).transcribe_all(tone_wav())
            return f"transcribed {transcript.usage.audio_seconds:.1f} s of audio"
        if task == "text-to-speech":
            speech = cast(TextToSpeechEngine, engine).synthesize(SENTENCE)
            if speech.duration <= 0:
                raise WarmUpError("synthesised no audio")
            return f"spoke {speech.duration:.1f} s of audio"
    except WarmUpError:
        raise
    except Exception as exc:
        raise WarmUpError(f"{type(exc).__name__}: {exc}") from exc
    raise WarmUpError(f"no warm-up for task {task!r}")


def _inject_fault() -> None:
    """Tests make a probe die as a faulting CPU instruction would: by the named signal."""
    fault = os.environ.get(FAULT_ENV, "")
    if not fault:
        return
    name, _, variant = fault.partition("@")
    if variant and variant != os.environ.get(VARIANT_ENV, ""):
        return
    sys.stdout.flush()
    os.kill(os.getpid(), signal.Signals[name])


def main(argv: list[str] | None = None) -> int:
    """Child process: load one model on the CPU (or GPU), warm it up, print one JSON line."""
    from inference.catalog import ModelSpec
    from inference.pool import build_engine

    parser = argparse.ArgumentParser(description="Load one model and run a tiny real inference.")
    parser.add_argument("--task", required=True)
    parser.add_argument("--engine", required=True)
    parser.add_argument("--path", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--options", default="{}", help="the catalog entry's engine options, as JSON")
    parser.add_argument("--gpu", action="store_true")
    args = parser.parse_args(argv)
    options = json.loads(args.options)
    if "config_path" in options:
        options["config_path"] = Path(options["config_path"])
    n_ctx = 512 if args.task in ("text-to-text", "text-completion", "embeddings") else 0
    spec = ModelSpec(
        id="probe", name="probe", task=args.task, engine=args.engine, path=args.path, n_ctx=n_ctx, options=options
    )
    started = time.monotonic()
    engine = build_engine(spec, args.gpu, args.threads)
    _inject_fault()
    did = warm_up(engine, args.task)
    print(json.dumps({"ok": True, "did": did, "seconds": round(time.monotonic() - started, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
