"""Our engine's stream against a raw llama-cpp-python loop, same model, same parameters, one run.

    .venv/bin/python bench/engine.py [--rounds 5] [--max-tokens 256] [--models smollm2-135m-instruct gemma-3-270m]

Baseline: ``Llama.generate`` over the same prompt tokens with the same sampler
settings, detokenising each token (the least a caller must do), using the same
loaded ``Llama`` object as our engine, on the model's own worker thread (a
llama.cpp context driven from a thread other than the one that loaded it crashes
on CUDA). Ours: the request
submitted to the model's worker through the pool and read back as a stream on
the calling thread (the path the site uses). Rounds
alternate A/B so machine noise hits both alike; medians are printed with the
median of per-round ratios ours/raw (goal: tokens/s at least 0.97 of raw).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.catalog import ModelSpec, load_catalog  # noqa: E402
from inference.device import DeviceDecision, decide_device  # noqa: E402
from inference.pool import EnginePool  # noqa: E402
from inference.types import ChatMessage, SamplingParams, TextChunk  # noqa: E402

PROMPT = "Write a long story about a dragon who learns to cook."


def raw_round(llm: object, tokens: list[int], params: SamplingParams) -> tuple[float, float, int]:
    import llama_cpp

    vocab = llm._model.vocab  # type: ignore[attr-defined]
    llm.reset()  # type: ignore[attr-defined]
    llm.set_seed(params.seed)  # type: ignore[attr-defined]
    started = time.perf_counter()
    first = 0.0
    n = 0
    gen = llm.generate(  # type: ignore[attr-defined]
        tokens,
        top_k=params.top_k,
        top_p=params.top_p,
        min_p=params.min_p,
        temp=params.temperature,
        repeat_penalty=params.repetition_penalty,
        frequency_penalty=params.frequency_penalty,
        presence_penalty=params.presence_penalty,
    )
    for token in gen:
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        llm.detokenize([token])  # type: ignore[attr-defined]
        n += 1
        if n == 1:
            first = time.perf_counter()
        if n >= params.max_tokens:
            break
    gen.close()
    end = time.perf_counter()
    return first - started, (n - 1) / (end - first), n


def ours_round(pool: EnginePool, spec: ModelSpec, params: SamplingParams) -> tuple[float, float, int]:
    def run(engine: object, stop: object) -> object:
        if spec.task == "text-to-text":
            return engine.chat([ChatMessage("user", PROMPT)], params, stop)  # type: ignore[attr-defined]
        return engine.complete(PROMPT, params, stop)  # type: ignore[attr-defined]

    started = time.perf_counter()
    return timed_stream(pool.submit(spec.id, run), started)


def timed_stream(chunks: Iterable[TextChunk], started: float) -> tuple[float, float, int]:
    """(time to first token, tokens/s after the first, tokens) of a stream begun at `started`.

    Chunks are tokens here (ASCII text, no stop sequences): the rate is over the tokens after the first."""
    first = 0.0
    n = 0
    for chunk in chunks:
        if chunk.usage is not None:
            n = chunk.usage.completion_tokens
        elif not first:
            first = time.perf_counter()
    end = time.perf_counter()
    return first - started, (n - 1) / (end - first), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=["smollm2-135m-instruct", "gemma-3-270m"])
    args = parser.parse_args()

    specs = {s.id: s for s in load_catalog([REPO / "playground" / "models.toml"], models_dir=REPO / "var" / "models")}
    device: DeviceDecision = decide_device(args.device)
    pool = EnginePool([specs[m] for m in args.models], device=device, threads=args.threads)
    params = SamplingParams(temperature=0.0, top_k=0, top_p=1.0, max_tokens=args.max_tokens, seed=1)
    print(f"device={device.device} threads={args.threads} rounds={args.rounds} max_tokens={args.max_tokens}")
    header = ("model", "raw tok/s", "ours tok/s", "ratio", "raw ttft ms", "ours ttft ms", "tokens")
    print("{:24} {:>10} {:>11} {:>6} {:>12} {:>13} {}".format(*header))
    for model_id in args.models:
        spec = specs[model_id]
        pool.warm([model_id])[0].result()
        engine = pool.workers[model_id].engine
        if spec.task == "text-to-text":
            tokens = engine.chat_prompt_tokens([ChatMessage("user", PROMPT)])
        else:
            tokens = engine.completion_prompt_tokens(PROMPT)
        # The very same Llama object for both (two instances' OpenMP threads would fight over the cores),
        # driven on the model's worker thread: the raw loop runs there as a one-shot job.
        raw, ours = [], []
        for n in range(args.rounds + 1):  # round 0 warms both paths up
            r = pool.call(model_id, lambda engine, tokens=tokens: raw_round(engine.llm, tokens, params))
            o = ours_round(pool, spec, params)
            if n:
                raw.append(r)
                ours.append(o)
        raw_rate = statistics.median(r[1] for r in raw)
        ours_rate = statistics.median(r[1] for r in ours)
        # Each round's pair ran back to back: the median of per-pair ratios cancels slow drift.
        ratio = statistics.median(o[1] / r[1] for r, o in zip(raw, ours, strict=True))
        raw_ttft = statistics.median(r[0] for r in raw) * 1000
        ours_ttft = statistics.median(r[0] for r in ours) * 1000
        counts = {r[2] for r in raw} | {r[2] for r in ours}
        print(
            f"{model_id:24} {raw_rate:10.1f} {ours_rate:11.1f} {ratio:6.3f} "
            f"{raw_ttft:12.1f} {ours_ttft:13.1f} {sorted(counts)}"
        )


if __name__ == "__main__":
    main()
