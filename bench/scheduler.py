"""Where a decode step of the batching engine spends its time, at 1, 4 and 8 concurrent streams (one run).

    .venv/bin/python bench/scheduler.py [--streams 1,4,8] [--max-tokens 128] [--threads 2] [--rounds 3]
                                        [--device cpu|cuda] [--slots 8] [--kv-mb 1024]

SmolLM2-135M-Instruct in-process through the pool, as the site runs it (BatchedTextEngine with the site's
PLAYGROUND_BATCH_SLOTS and PLAYGROUND_BATCH_KV_MB: 8 and 1,024 MiB give SmolLM2's 8,192-token context 5 slots; each
stream a job on the model's worker, read on one asyncio loop as the API reads it), greedy, a unique prompt per
stream.
Each scheduler step is timed in parts: `llama_decode`, picking each sequence's token (sampling), taking
the token (detokenizing, stop-sequence scan, the hand-off to the request), and the rest (building the batch,
bookkeeping): the Python the scheduler adds around the two llama.cpp calls. The baseline, measured in the same run,
is the decode and picking time alone: `ours / bare` is the aggregate tokens/s over what those two calls would
give if nothing else ran (1.0 = no overhead at all). Medians over --rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference import text as text_module  # noqa: E402
from inference.catalog import load_catalog  # noqa: E402
from inference.device import decide_device  # noqa: E402
from inference.pool import EnginePool  # noqa: E402
from inference.types import ChatMessage, SamplingParams  # noqa: E402

MODEL = "smollm2-135m-instruct"


class Timers:
    """Seconds spent in each part, summed over a round."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.steps = 0

    def wrap(self, name: str, fn: Any) -> Any:
        seconds = self.seconds

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - started

        return timed


class _Lib:
    """llama_cpp, with llama_decode timed."""

    def __init__(self, lib: Any, timers: Timers) -> None:
        self._lib = lib
        self.llama_decode = timers.wrap("decode", lib.llama_decode)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name)


def instrument(engine: Any, timers: Timers) -> None:
    engine._llama_cpp = _Lib(engine._llama_cpp, timers)
    step = timers.wrap("step", engine._step)

    def counted_step() -> None:
        timers.steps += 1
        step()

    engine._step = counted_step
    engine._take = timers.wrap("take", engine._take)
    if hasattr(engine, "_picks"):  # every sequence's pick of a step
        engine._picks = timers.wrap("pick", engine._picks)
    else:  # an engine from before _picks (to compare with): each sampler chain's
        sample = text_module.Sampler.sample
        text_module.Sampler.sample = lambda self, ctx, index: timers.wrap("pick", sample)(self, ctx, index)


async def one_round(pool: EnginePool, streams: int, max_tokens: int, salt: int) -> tuple[float, int, float]:
    """(wall seconds, completion tokens, median TTFT) of `streams` concurrent streams read on this loop."""
    params = SamplingParams(temperature=0.0, top_k=0, top_p=1.0, max_tokens=max_tokens)

    async def stream(i: int) -> tuple[int, float]:
        messages = [ChatMessage("user", f"Story {salt}-{i}: write a long tale about a dragon who learns to cook.")]

        def run(engine: Any, stop: Any) -> Any:
            return engine.chat(messages, params, stop)

        started = time.perf_counter()
        first = 0.0
        tokens = 0
        async for chunk in pool.submit(MODEL, run):
            if chunk.text and not first:
                first = time.perf_counter() - started
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        return tokens, first

    started = time.perf_counter()
    results = await asyncio.gather(*(stream(i) for i in range(streams)))
    wall = time.perf_counter() - started
    return wall, sum(r[0] for r in results), statistics.median(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="1,4,8")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--kv-mb", type=int, default=1024)
    args = parser.parse_args()

    specs = {s.id: s for s in load_catalog([REPO / "playground" / "models.toml"], models_dir=REPO / "var" / "models")}
    device = decide_device(args.device)
    pool = EnginePool(
        [specs[MODEL]], device=device, threads=args.threads, batch_slots=args.slots, batch_kv_bytes=args.kv_mb * 2**20
    )
    pool.warm([MODEL])[0].result()
    slots = pool.workers[MODEL].concurrency
    timers = Timers()
    instrument(pool.workers[MODEL].engine, timers)
    print(f"{MODEL}, device={device.device}, threads={args.threads}, max_tokens={args.max_tokens}, {slots} slots")
    head = ("streams", "tok/s", "TTFT ms", "steps", "step µs", "decode", "pick", "take", "rest", "ours/bare")
    print("{:>7} {:>7} {:>8} {:>6} {:>8} {:>7} {:>7} {:>7} {:>7} {:>9}".format(*head))
    salt = 0
    for streams in [int(s) for s in args.streams.split(",")]:
        rows = []
        for n in range(args.rounds + 1):  # round 0 warms up
            timers.seconds.clear()
            timers.steps = 0
            salt += 1
            wall, tokens, ttft = asyncio.run(one_round(pool, streams, args.max_tokens, salt))
            if not n:
                continue
            s = dict(timers.seconds)
            bare = tokens / (s["decode"] + s["pick"])
            rows.append((tokens / wall, ttft * 1000, timers.steps, s, bare))
        med = statistics.median
        steps = med(r[2] for r in rows)

        def per_step(part: str, rows: list[tuple] = rows) -> float:
            return statistics.median(r[3].get(part, 0.0) / r[2] for r in rows) * 1e6

        rest = med((r[3]["step"] - r[3]["decode"] - r[3]["pick"] - r[3]["take"]) / r[2] for r in rows) * 1e6
        ratio = med(r[0] / r[4] for r in rows)
        print(
            f"{streams:7} {med(r[0] for r in rows):7.1f} {med(r[1] for r in rows):8.0f} {steps:6.0f} "
            f"{per_step('step'):8.0f} {per_step('decode'):7.0f} {per_step('pick'):7.0f} {per_step('take'):7.0f} "
            f"{rest:7.0f} {ratio:9.3f}"
        )


if __name__ == "__main__":
    main()
