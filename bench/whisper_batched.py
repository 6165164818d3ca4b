"""Real-time factor of a long recording: faster-whisper's sequential decoder against its batched pipeline, one run.

    .venv/bin/python bench/whisper_batched.py [--minutes 10] [--model whisper-tiny.en] [--threads N] [--batch-size 8]

The recording is Piper's voice reading varied sentences with pauses, `--minutes` long (made once, kept in
var/bench/). Both engines are our WhisperEngine (inference/speech.py) on the same samples: `batched_from_seconds=0`
(sequential, what audio shorter than BATCHED_FROM_SECONDS gets) and the batched pipeline. Prints seconds of work,
the real-time factor (work / audio, lower is faster), the ratio, and the word error rate of each against the text.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jiwer  # noqa: E402

from inference.catalog import load_catalog  # noqa: E402
from inference.speech import BATCH_SIZE, PiperEngine, WhisperEngine  # noqa: E402

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Bread rises because yeast makes gas in the dough.",
    "The river runs past the old mill and into the valley.",
    "Every morning the baker opens the shop at six.",
    "Rain fell on the roofs of the quiet town all night.",
    "She wrote a letter to her brother who lives by the sea.",
    "The train to the city leaves from the second platform.",
    "Children played football in the park until the sun went down.",
    "A small boat crossed the lake before the storm arrived.",
    "The museum keeps paintings from four hundred years ago.",
]


def recording(minutes: float) -> tuple[bytes, str, float]:
    """A WAV of Piper reading the sentences (half a second apart) until it lasts `minutes`; cached."""
    specs = {s.id: s for s in load_catalog([REPO / "playground" / "models.toml"], models_dir=REPO / "var" / "models")}
    cache = REPO / "var" / "bench" / f"speech-{minutes:g}min.wav"
    text_file = cache.with_suffix(".txt")
    if not cache.exists():
        voice = specs["piper-en-us-joe"]
        piper = PiperEngine(path=voice.path, **voice.options)
        frames, said, seconds, n = b"", [], 0.0, 0
        while seconds < minutes * 60:
            sentence = SENTENCES[n % len(SENTENCES)]
            clip = piper.synthesize(sentence)
            with wave.open(io.BytesIO(clip.wav)) as reader:
                rate = reader.getframerate()
                frames += reader.readframes(reader.getnframes()) + b"\0\0" * (rate // 2)
            said.append(sentence)
            seconds += clip.duration + 0.5
            n += 1
        cache.parent.mkdir(parents=True, exist_ok=True)
        out = io.BytesIO()
        with wave.open(out, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(rate)
            writer.writeframes(frames)
        cache.write_bytes(out.getvalue())
        text_file.write_text(" ".join(said))
    data = cache.read_bytes()
    with wave.open(io.BytesIO(data)) as reader:
        duration = reader.getnframes() / reader.getframerate()
    return data, text_file.read_text(), duration


def wer(reference: str, hypothesis: str) -> float:
    normalise = jiwer.Compose(
        [jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()]
    )
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--model", default="whisper-tiny.en")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args()
    data, text, duration = recording(args.minutes)
    specs = {s.id: s for s in load_catalog([REPO / "playground" / "models.toml"], models_dir=REPO / "var" / "models")}
    path = specs[args.model].path
    print(f"{args.model}, {duration:.0f} s of speech, {args.threads} threads, CPU int8")
    results = {}
    for name, threshold in (("sequential", 0.0), ("batched", 1.0)):
        engine = WhisperEngine(
            path=path, threads=args.threads, batched_from_seconds=threshold, batch_size=args.batch_size
        )
        started = time.perf_counter()
        result = engine.transcribe_all(data)
        seconds = time.perf_counter() - started
        results[name] = seconds
        print(
            f"{name:10s}: {seconds:7.1f} s of work, real-time factor {seconds / duration:.3f}, "
            f"{len(result.segments)} segments, WER {wer(text, result.text):.3f}"
        )
    print(f"batched / sequential time: {results['batched'] / results['sequential']:.2f}")


if __name__ == "__main__":
    main()
