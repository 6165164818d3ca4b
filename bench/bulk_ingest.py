"""Peak memory and speed of ingesting a Bulk Prompts CSV, against a raw chunked read of the same file.

    .venv/bin/python bench/bulk_ingest.py [--mb 500]

Generates a CSV of about --mb megabytes (quoted prompts with commas, some with newlines) in a
temporary directory, then in one run: reads it raw in 1 MiB chunks (baseline), and parses it with
playground.bulk.csvfile.prompts_read. Prints rows, seconds, MB/s, the ratio ours/raw, and the growth
of the process's peak resident memory during the parse (goal: under 100 MB for 500 MB).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.bulk.csvfile import CHUNK, prompts_read  # noqa: E402

ROWS = (
    b'"Summarise, in one sentence, the plot of a novel about a lighthouse keeper."\n',
    b'"Write a haiku about autumn,\nthen explain it."\n',
    b"Translate good morning into French\n",
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def write_csv(path: Path, mb: int) -> None:
    """A CSV of about `mb` megabytes: the `prompts` header, then the sample rows over and over."""
    target = mb * 1024 * 1024
    with open(path, "wb") as out:
        out.write(b"prompts\n")
        block = b"".join(ROWS) * 2000
        written = 8
        while written + len(block) <= target:
            out.write(block)
            written += len(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prompts.csv"
        target = args.mb * 1024 * 1024
        write_csv(path, args.mb)
        size_mb = path.stat().st_size / 1024 / 1024

        started = time.perf_counter()
        with open(path, "rb") as handle:
            while handle.read(CHUNK):
                pass
        raw_s = time.perf_counter() - started

        before = peak_rss_mb()
        started = time.perf_counter()
        rows = sum(1 for _ in prompts_read(path, max_bytes=target + 1))
        ours_s = time.perf_counter() - started
        growth = peak_rss_mb() - before
    print(f"file {size_mb:.0f} MB, {rows} prompts")
    print(f"raw chunked read: {raw_s:.2f} s ({size_mb / raw_s:.0f} MB/s)")
    print(f"prompts_read:     {ours_s:.2f} s ({size_mb / ours_s:.0f} MB/s), ratio ours/raw {raw_s / ours_s:.3f}")
    print(f"peak RSS growth while parsing: {growth:.1f} MB (goal < 100 MB)")


if __name__ == "__main__":
    main()
