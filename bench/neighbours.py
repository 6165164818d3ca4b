"""How much other models loaded in the same process slow a chat model's replies (one run).

    .venv/bin/python bench/neighbours.py [--model smollm2-135m-instruct] [--with gemma-3-270m,gemma-3-270m:busy,all]
                                         [--tokens 64] [--replies 9] [--passes 2] [--threads 2]

The site loads every catalog model into one process, each on its own worker thread, and proves each with a
short real decode (inference/pool.py `load_on_device`). This loads --model through the pool as the site does
(batched, the site's default slots and KV budget), alone and then beside each neighbour set, each configuration in
a fresh child process (so no thread or OpenMP team outlives its configuration), and times one greedy reply of
--tokens tokens at a time (no other request running; a reply that ends sooner is scaled to --tokens). The baseline
is the model alone, measured in the same run; configurations alternate over --passes so drift on a shared host
falls on all of them. `all` is every other catalog model whose weights are present; `id:busy` keeps that neighbour
decoding (one short request after another, as another user's) the whole time the model is timed.

Prints each configuration's median reply time over all its replies and its ratio to alone (1.00 = no slowdown).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.catalog import load_catalog  # noqa: E402
from inference.device import decide_device  # noqa: E402
from inference.pool import EnginePool  # noqa: E402
from inference.types import ChatMessage, SamplingParams  # noqa: E402


def catalog() -> dict[str, Any]:
    return {s.id: s for s in load_catalog([REPO / "playground" / "models.toml"], models_dir=REPO / "var" / "models")}


def busy_work(spec: Any) -> Callable[[Any, threading.Event], Iterator[Any]]:
    """One request that keeps the neighbour's engine working, as another user's would."""
    params = SamplingParams(temperature=0.0, top_k=0, top_p=1.0, max_tokens=32)
    if spec.task == "text-to-text":
        return lambda engine, halt: engine.chat([ChatMessage("user", "Tell me about the sea.")], params, halt)
    if spec.task == "text-completion":
        return lambda engine, halt: engine.complete("Once upon a time", params, halt)
    if spec.task == "embeddings":
        return lambda engine, halt: iter([engine.embed(["A sentence about the sea, embedded."] * 8, halt)])
    raise SystemExit(f"{spec.id}: no busy work for the task {spec.task}")


def child(
    model: str, neighbours: list[str], tokens: int, replies: int, threads: int
) -> tuple[list[float], float, float]:
    """Seconds of each reply, in a pool holding the model and its neighbours (all loaded and proven first).

    A neighbour named `id:busy` is kept decoding the whole time, one request after another; then come what they
    did per second (tokens, or texts embedded) with the model idle, and while it was timed.
    """
    specs = catalog()
    busy = [n.removesuffix(":busy") for n in neighbours if n.endswith(":busy")]
    ids = [model, *(n.removesuffix(":busy") for n in neighbours)]
    pool = EnginePool([specs[i] for i in ids], device=decide_device("cpu"), threads=threads, batch_slots=8)
    for loading in pool.warm(ids):
        loading.result()
    params = SamplingParams(temperature=0.0, top_k=0, top_p=1.0, max_tokens=tokens)

    async def reply(n: int) -> float:
        messages = [ChatMessage("user", f"Story {n}: write a long tale about a dragon who learns to cook.")]
        started = time.perf_counter()
        count = 0

        def run(engine: Any, stop: threading.Event) -> Iterator[Any]:
            return engine.chat(messages, params, stop)

        async for chunk in pool.submit(model, run):
            count = chunk.usage.completion_tokens if chunk.usage is not None else count
        return (time.perf_counter() - started) / count * tokens  # as if every reply had --tokens tokens

    done = [0]  # tokens (or texts) the busy neighbours completed while the model was timed

    async def keep_busy(neighbour: str, stop: threading.Event) -> None:
        while not stop.is_set():
            async for item in pool.submit(neighbour, busy_work(specs[neighbour])):
                usage = getattr(item, "usage", None)
                done[0] += usage.completion_tokens if usage is not None and usage.completion_tokens else 0
                done[0] += len(getattr(item, "vectors", ()))

    async def timed() -> tuple[list[float], float, float]:
        stop = threading.Event()
        workers = [asyncio.create_task(keep_busy(n, stop)) for n in busy]
        await reply(-1)  # warm-up
        done[0] = 0
        await asyncio.sleep(5 if busy else 0)  # the busy neighbours' own rate, the model idle
        alone = done[0] / 5
        done[0] = 0
        started = time.perf_counter()
        seconds = [await reply(n) for n in range(replies)]
        rate = done[0] / (time.perf_counter() - started)
        stop.set()
        await asyncio.gather(*workers)
        return seconds, alone, rate

    return asyncio.run(timed())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--with", dest="neighbours", default="gemma-3-270m,all-minilm-l6-v2,all,gemma-3-270m:busy")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--replies", type=int, default=9)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        neighbours = [n for n in args.child.split(",") if n]
        print(json.dumps(child(args.model, neighbours, args.tokens, args.replies, args.threads)))
        return

    specs = catalog()
    others = [i for i, s in specs.items() if i != args.model and not s.remote and s.weights_present]
    configs: dict[str, list[str]] = {"alone": []}
    for name in args.neighbours.split(","):
        configs[f"with {name.replace(':busy', ' (busy)')}"] = others if name == "all" else [name]
    seconds: dict[str, list[float]] = {name: [] for name in configs}
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for _ in range(args.passes):
        for name, neighbours in configs.items():
            command = [sys.executable, __file__, "--model", args.model, "--child", ",".join(neighbours)]
            command += ["--tokens", str(args.tokens), "--replies", str(args.replies), "--threads", str(args.threads)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            times, alone_rate, rate = json.loads(out.strip().splitlines()[-1])
            seconds[name] += times
            rates[name].append((alone_rate, rate))
    alone = statistics.median(seconds["alone"])
    print(f"{args.model}: one {args.tokens}-token greedy reply at a time, {args.threads} threads, {args.passes} passes")
    print(f"{'configuration':<32} {'replies':>7} {'p50 ms':>8} {'min ms':>8} {'/ alone':>8}  busy neighbours")
    for name, values in seconds.items():
        p50 = statistics.median(values)
        line = f"{name:<32} {len(values):7} {p50 * 1000:8.0f} {min(values) * 1000:8.0f} {p50 / alone:8.2f}"
        if any(r[0] for r in rates[name]):
            idle, during = (statistics.mean(r[i] for r in rates[name]) for i in (0, 1))
            line += f"  {idle:.1f}/s alone, {during:.1f}/s beside the model ({during / idle:.2f})"
        print(line)
    print(f"all = {', '.join(others)}")


if __name__ == "__main__":
    main()
