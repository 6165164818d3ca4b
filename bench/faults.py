"""Faults and latency under load against a live Daphne with the real models (loopback only).

    .venv/bin/python bench/faults.py [--seconds 10]

1. Page latency while a long generation runs (inference must never block the event loop): wrk (Debian
   package) asks for the catalog page `/` at about 50 requests/s (4 connections, each waiting 70 ms
   between requests, bench/wrk_rate.lua) for --seconds, first with the server idle (baseline), then
   while a 1,500-token completion stream is being generated (gemma-3-270m). Prints p50/p99 and
   requests/s for both and the
   ratio of p99s. Goal: p99 under 50 ms while generating.
Both run with the serialized engine (PLAYGROUND_BATCH_SLOTS=0).
2. A client that disconnects mid-stream frees the model: stream A runs, request B waits in the queue
   behind it; A's connection is closed and the time until B's first token is compared with B's time to
   first token on an idle model plus one token of A. Goal: B starts within one token's time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.peers import sse_pieces  # noqa: E402
from tests.livesite import live_api_token, live_site  # noqa: E402

MODEL = "gemma-3-270m"


def open_stream(port: int, token: str, max_tokens: int, prompt: str) -> tuple[http.client.HTTPConnection, Any]:
    """A streaming completion from the base model (it rarely stops early: streams run to max_tokens)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = json.dumps({"model": MODEL, "stream": True, "max_tokens": max_tokens, "seed": 1, "prompt": prompt})
    conn.request(
        "POST",
        "/v1/completions",
        body=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return conn, conn.getresponse()


def token_times(response: http.client.HTTPResponse, limit: int | None = None) -> list[float]:
    """Arrival times of content tokens (until [DONE] or `limit` tokens)."""
    times = []
    for _ in sse_pieces(response):
        times.append(time.perf_counter())
        if limit and len(times) >= limit:
            break
    return times


def wrk(url: str, seconds: int) -> tuple[float, float, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            "-c4",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "wrk_rate.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return ms("50%"), ms("99%"), rate


def page_latency(port: int, token: str, seconds: int) -> None:
    url = f"http://127.0.0.1:{port}/"
    idle = wrk(url, seconds)
    conn, response = open_stream(port, token, 1500, "Once upon a time, in a lighthouse by the sea,")
    generating = threading.Event()
    tokens: list[float] = []

    def consume() -> None:
        try:
            for raw in response:
                if b'"text"' in raw:
                    tokens.append(time.perf_counter())
                    generating.set()
        except (OSError, ValueError, AttributeError):  # closed below
            pass

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    generating.wait(60)
    busy = wrk(url, seconds)
    still = len(tokens)
    time.sleep(0.5)
    assert len(tokens) > still, "the generation ended before the measurement did: raise max_tokens"
    conn.close()
    print(f"page / idle:       p50 {idle[0]:.1f} ms, p99 {idle[1]:.1f} ms, {idle[2]:.1f} req/s")
    print(f"page / generating: p50 {busy[0]:.1f} ms, p99 {busy[1]:.1f} ms, {busy[2]:.1f} req/s")
    print(f"p99 generating/idle: {busy[1] / idle[1]:.2f} (goal: p99 under 50 ms while generating)")


def disconnect(port: int, token: str) -> None:
    # B's time to first token on an idle model (median of 3).
    idle = []
    for _ in range(3):
        started = time.perf_counter()
        conn, response = open_stream(port, token, 4, "The sky is")
        idle.append(token_times(response)[0] - started)
        conn.close()
    idle_ttft = sorted(idle)[1]

    a_conn, a = open_stream(port, token, 2000, "Once upon a time, in a small village,")
    first = token_times(a, limit=20)
    token_time = (first[-1] - first[0]) / (len(first) - 1)
    b_first: list[float] = []

    def run_b() -> None:
        conn, response = open_stream(port, token, 4, "The sky is")
        b_first.append(token_times(response, limit=1)[0])
        conn.close()

    b = threading.Thread(target=run_b)
    b.start()
    time.sleep(1.0)  # B is queued behind A by now
    assert not b_first, "B started before A was closed"
    closed = time.perf_counter()
    a_conn.sock.shutdown(socket.SHUT_RDWR)  # the client leaves
    a_conn.close()
    b.join(60)
    waited = b_first[0] - closed
    print(f"A's token time {token_time * 1000:.1f} ms; B's idle time to first token {idle_ttft * 1000:.1f} ms")
    print(
        f"B's first token {waited * 1000:.1f} ms after A's client left: "
        f"{(waited - idle_ttft) * 1000:.1f} ms beyond its idle TTFT = {(waited - idle_ttft) / token_time:.2f} "
        "token times (goal <= 1)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (Debian: apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    # The serialized engine: request B must queue behind A (with batching it would run beside it), and
    # A's long generation needs the model's whole context.
    env = {"PLAYGROUND_WARM_MODELS": "1", "PLAYGROUND_REQUEST_TIMEOUT": "300", "PLAYGROUND_BATCH_SLOTS": "0"}
    with live_site(workdir, **env) as base:
        port = int(base.rsplit(":", 1)[1])
        token = live_api_token(workdir)
        conn, response = open_stream(port, token, 4, "warm up")
        response.read()
        conn.close()
        page_latency(port, token, args.seconds)
        disconnect(port, token)


if __name__ == "__main__":
    main()
