"""Fair turns on a model: one user's flood against another user's single short request, in one run.

    .venv/bin/python bench/fairness.py [--slots 8] [--flood 24] [--flood-tokens 128] [--tokens 16]

The real SmolLM2-135M-Instruct in-process through the pool (as bench/engine.py builds it), batched into
`--slots` sequences as the site does (PLAYGROUND_BATCH_SLOTS; 0: one request at a time), 2 threads, greedy.
User A sends `--flood` long streams at once; when they are decoding, user B sends one short request. Three
scenes, one after another:
  alone   B's request on an idle model (the floor);
  fifo    the flood, every job without an owner: one line, first come first served (the scheduler before fair
          turns, which the pool still is for jobs without an owner);
  fair    the flood, A's and B's jobs each with their owner: users take turns (and the site's caps apply:
          PLAYGROUND_MAX_WAITING_PER_USER 16, PLAYGROUND_MAX_RUNNING_PER_USER half the slots).
For each: B's place in line when it asked (`B pos`), how many of A's requests the model started after B asked and
before B's (`A ahead`: the turns B waited, whatever the machine's speed), B's time to first token and to the end of
its reply, how many of A's requests finished before B's first token and before B's reply ended, how many of A's
were refused (429 rate_limit_exceeded), and A's median time and tokens per request that ran to its end (one slot's
turn). Goal: with fair turns B waits at most about one slot's turn, not A's whole queue. A's requests still going
once B is done are cancelled (they no longer matter). The scenes share the loaded model; each starts on an empty
line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.catalog import load_catalog  # noqa: E402
from inference.device import decide_device  # noqa: E402
from inference.pool import EnginePool  # noqa: E402
from inference.serving import Job, Owner  # noqa: E402
from inference.types import ChatMessage, RateLimitedError, SamplingParams, TextChunk  # noqa: E402

MODEL = "smollm2-135m-instruct"
TOPICS = ("a lighthouse", "a dragon who cooks", "a lost city", "the sea", "a clockmaker", "a winter market")


class Observer:
    """A JobObserver noting, on the worker thread, when a job started, yielded its first piece and ended."""

    def __init__(self) -> None:
        self.started = self.first = self.ended = 0.0
        self.tokens = 0
        self.cancelled = False
        self.finished = threading.Event()

    def start(self) -> None:
        self.started = time.perf_counter()

    def item(self, item: Any) -> bool:
        if not self.first:
            self.first = time.perf_counter()
        if isinstance(item, TextChunk) and item.usage is not None:
            self.tokens = item.usage.completion_tokens
        return False

    def done(self, *, cancelled: bool, error: BaseException | None) -> None:
        self.ended = time.perf_counter()
        self.cancelled = cancelled
        self.finished.set()


def chat(text: str, params: SamplingParams) -> Any:
    messages = [ChatMessage("user", text)]

    def run(engine: Any, stop: threading.Event) -> Any:
        return engine.chat(messages, params, stop)

    return run


def scene(pool: EnginePool, name: str, args: argparse.Namespace) -> dict[str, Any]:
    fair = name == "fair"
    worker = pool.workers[MODEL]
    flood: list[tuple[Job[TextChunk], Observer]] = []
    refused = 0
    long = SamplingParams(temperature=0.0, max_tokens=args.flood_tokens, seed=1)
    short = SamplingParams(temperature=0.0, max_tokens=args.tokens, seed=1)
    a = Owner("A", max_waiting=16) if fair else None
    b = Owner("B", max_waiting=16) if fair else None
    if name != "alone":
        for i in range(args.flood):
            observer = Observer()
            prompt = f"Write a long story about {TOPICS[i % len(TOPICS)]}, part {i + 1}."
            try:
                flood.append((pool.submit(MODEL, chat(prompt, long), observer, owner=a), observer))
            except RateLimitedError:
                refused += 1
        # B asks once A's first batch is decoding: the worst moment, a whole turn ahead of any free slot
        while not any(o.first for _, o in flood):
            time.sleep(0.005)
    observer = Observer()
    asked = time.perf_counter()
    job = pool.submit(MODEL, chat("Say hello in five words.", short), observer, owner=b)
    position = job.position()
    first = 0.0
    for _chunk in job:
        if not first:
            first = time.perf_counter()
    ended = time.perf_counter()
    started_ahead = sum(1 for _, o in flood if asked < o.started < observer.started)
    finished_before_first = sum(1 for _, o in flood if o.finished.is_set() and o.ended <= first)
    finished_before_end = sum(1 for _, o in flood if o.finished.is_set() and o.ended <= ended)
    for j, _ in flood:
        j.cancel()
    for j, _ in flood:
        j.result()  # ends at once for a job still waiting; within a token for one running
    completed = [o for _, o in flood if o.finished.is_set() and not o.cancelled]
    whole = [o.ended - o.started for o in completed]
    while worker.waiting or worker.running:
        time.sleep(0.01)
    return {
        "scene": name,
        "position": position,
        "a_ahead": started_ahead,
        "ttft": first - asked,
        "reply": ended - asked,
        "a_before_first": finished_before_first,
        "a_before_end": finished_before_end,
        "a_refused": refused,
        "a_turn": statistics.median(whole) if whole else float("nan"),
        "a_tokens": int(statistics.median(o.tokens for o in completed)) if completed else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=8, help="batch slots (PLAYGROUND_BATCH_SLOTS); 0: serialized")
    parser.add_argument("--flood", type=int, default=24, help="user A's concurrent streams")
    parser.add_argument("--flood-tokens", type=int, default=128, help="max tokens of each of A's streams")
    parser.add_argument("--tokens", type=int, default=16, help="max tokens of B's request")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scenes", nargs="+", default=["alone", "fifo", "fair"], choices=["alone", "fifo", "fair"])
    args = parser.parse_args()

    specs = {s.id: s for s in load_catalog([REPO / "playground" / "models.toml"], models_dir=REPO / "var" / "models")}
    pool = EnginePool(
        [specs[MODEL]], device=decide_device("cpu"), threads=args.threads, max_queue=100, batch_slots=args.slots
    )
    worker = pool.workers[MODEL]
    pool.warm([MODEL])[0].result()
    print(
        f"{MODEL}, {worker.concurrency} slot(s), {args.threads} threads, greedy; A: {args.flood} streams of up to "
        f"{args.flood_tokens} tokens; B: one request of up to {args.tokens} tokens"
    )
    header = (
        "scene",
        "B pos",
        "A ahead",
        "B TTFT s",
        "B reply s",
        "A done<B 1st",
        "A done<B end",
        "A 429",
        "A turn s",
        "A tok",
    )
    print("{:6} {:>6} {:>8} {:>9} {:>10} {:>13} {:>13} {:>6} {:>9} {:>6}".format(*header))
    for name in args.scenes:
        r = scene(pool, name, args)
        print(
            f"{r['scene']:6} {r['position']:>6} {r['a_ahead']:>8} {r['ttft']:9.2f} {r['reply']:10.2f} "
            f"{r['a_before_first']:>13} {r['a_before_end']:>13} {r['a_refused']:>6} {r['a_turn']:9.2f} "
            f"{r['a_tokens']:>6}"
        )


if __name__ == "__main__":
    main()
