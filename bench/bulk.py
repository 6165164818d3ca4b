"""Bulk job throughput against the raw engine, and peak memory while ingesting a large CSV.

    .venv/bin/python bench/bulk.py [--prompts 12] [--rounds 9] [--max-tokens 32] [--mb 500]

Throughput: the same prompts through the same loaded model, in one run, in rounds (each side first in turn):
  raw   the engine's own chat loop called directly on this thread, one prompt after another;
  bulk  a bulk job over a dataset of those prompts, processed by `job_process` exactly as a worker
        does (claims, heartbeat, the model's queue as a background job, one result row per prompt,
        the usage ledger), on a fresh SQLite file.
Prints prompts/s for each and the ratio bulk/raw (median of per-round ratios; goal >= 0.9).

Overhead: a 200-prompt job on a fake engine that answers at once: milliseconds per prompt spent on
claims, results and the ledger.

Ingest (run first, before any model is loaded): generates a CSV of about --mb megabytes and adds it to
a dataset with `dataset_upload` (the upload path: streaming parse, batched inserts into SQLite); prints
rows, seconds and the growth of peak resident memory (goal: under 100 MB). --mb 0 skips it, --rounds 0
skips the throughput part.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
os.environ["PLAYGROUND_SQLITE_PATH"] = str(WORK / "db.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench.bulk_ingest import write_csv  # noqa: E402
from inference import ChatMessage, EnginePool, ModelSpec  # noqa: E402
from inference.device import DeviceDecision  # noqa: E402
from playground import engines  # noqa: E402
from playground.bulk.models import BulkItem, Dataset, Prompt  # noqa: E402
from playground.bulk.processing import job_process  # noqa: E402
from playground.bulk.services import dataset_upload, job_create  # noqa: E402
from playground.serving import sampling_params  # noqa: E402

MODEL = "smollm2-135m-instruct"
TOPICS = ["the sea", "a mountain", "bread", "a library", "rain", "a bicycle", "tea", "the moon"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def throughput(user: User, prompts: list[str], rounds: int, max_tokens: int) -> None:
    pool = engines.get_pool()
    engine = pool.call(MODEL, lambda e: e)  # load it once; both sides use this very object
    overrides = {"temperature": 0, "max_tokens": max_tokens, "seed": 1}
    params = sampling_params(model_id=MODEL, overrides=overrides)
    dataset = Dataset.objects.create(user=user, name="bench")
    Prompt.objects.bulk_create(
        Prompt(dataset=dataset, position=n, source_line=n + 1, text=t) for n, t in enumerate(prompts, 1)
    )

    def raw() -> tuple[float, int]:
        started = time.perf_counter()
        tokens = 0
        for text in prompts:
            chunks = list(engine.chat([ChatMessage("user", text)], params))
            tokens += chunks[-1].usage.completion_tokens
        return time.perf_counter() - started, tokens

    def bulk() -> tuple[float, int]:
        job = job_create(user=user, dataset=dataset, model_id=MODEL, params=overrides)
        started = time.perf_counter()
        job_process(job.pk)
        elapsed = time.perf_counter() - started
        items = BulkItem.objects.filter(job=job, state=BulkItem.State.DONE)
        assert items.count() == len(prompts), "every prompt must have its result"
        return elapsed, sum(items.values_list("completion_tokens", flat=True))

    raw()  # warm-up: caches, allocator, the first job's one-time set-up
    bulk()
    ratios = []
    print(f"{len(prompts)} prompts, max_tokens {max_tokens}, greedy, model {MODEL}")
    for n in range(rounds):
        if n % 2:  # alternate which side goes first: the host's noise drifts within a round
            bulk_s, bulk_tokens = bulk()
            raw_s, raw_tokens = raw()
        else:
            raw_s, raw_tokens = raw()
            bulk_s, bulk_tokens = bulk()
        ratio = raw_s / bulk_s
        ratios.append(ratio)
        print(
            f"round {n + 1}: raw {len(prompts) / raw_s:.2f} prompts/s ({raw_tokens / raw_s:.1f} tok/s), "
            f"bulk {len(prompts) / bulk_s:.2f} prompts/s ({bulk_tokens / bulk_s:.1f} tok/s), ratio {ratio:.3f}"
        )
    print(f"median ratio bulk/raw: {statistics.median(ratios):.3f} (goal >= 0.9)")


def overhead(user: User, prompts: int = 200) -> None:
    """What a bulk job costs beyond inference: a job over a fake engine that answers instantly."""
    real = engines.get_pool()
    fake = EnginePool(
        [ModelSpec(id="fake-chat", name="Fake", task="text-to-text", engine="fake", path=Path("/nonexistent"))],
        device=DeviceDecision("cpu", "benchmark"),
        threads=1,
    )
    engines.set_pool(fake)
    try:
        dataset = Dataset.objects.create(user=user, name="overhead")
        Prompt.objects.bulk_create(
            Prompt(dataset=dataset, position=n, source_line=n + 1, text=f"prompt {n}") for n in range(1, prompts + 1)
        )
        job = job_create(user=user, dataset=dataset, model_id="fake-chat", params={"max_tokens": 8})
        started = time.perf_counter()
        job_process(job.pk)
        elapsed = time.perf_counter() - started
    finally:
        engines.set_pool(real)
    print(f"bulk overhead per prompt (fake engine, {prompts} prompts): {elapsed / prompts * 1000:.1f} ms")


def ingest(user: User, mb: int) -> None:
    path = WORK / "prompts.csv"
    write_csv(path, mb)
    dataset = Dataset.objects.create(user=user, name="ingest")
    before = peak_rss_mb()
    started = time.perf_counter()
    rows = dataset_upload(dataset=dataset, path=path)
    elapsed = time.perf_counter() - started
    growth = peak_rss_mb() - before
    size_mb = path.stat().st_size / 1024 / 1024
    print(f"ingest: {size_mb:.0f} MB, {rows} prompts stored in {elapsed:.1f} s ({rows / elapsed:.0f} rows/s)")
    print(f"peak RSS growth while ingesting: {growth:.1f} MB (goal < 100 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--mb", type=int, default=500)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench")
    prompts = [f"Write one sentence about {TOPICS[n % len(TOPICS)]} (#{n})." for n in range(args.prompts)]
    if args.mb:  # first: the process's peak memory is then Django alone, not a loaded model
        ingest(user, args.mb)
    overhead(user)
    if args.rounds:
        throughput(user, prompts, args.rounds, args.max_tokens)


if __name__ == "__main__":
    main()
