"""Load and faults against a live Daphne with the real models (loopback, bounded in time).

100 concurrent streaming chat requests to one model whose queue holds 30: every request either completes
its stream or gets 429 with Retry-After, none is lost or gets a 5xx, at least a queue's worth are served, the
waiting line never holds more than 30, the server keeps serving, and its memory comes back to its level after
the burst. Nothing here depends on the machine's speed: a fast machine that serves a burst of short replies
as it arrives gets bursts of longer replies until its queue fills.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.livesite import live_api_token, live_site

MODEL = "smollm2-135m-instruct"
BURST = 100
MAX_QUEUE = 30
# Replies long enough that the server cannot finish 100 of them while they arrive: 4 tokens fill a CPU's queue
# at once; a GPU may keep up with those, never with 100 stories of up to 512 tokens.
REPLY_TOKENS = (4, 64, 512)
PROMPT = "Tell me a long story about a lighthouse keeper."


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    workdir = tmp_path_factory.mktemp("burst-site")
    # the global bound is under test: one token sends the burst, so no per-user cap may refuse first
    env = {
        "PLAYGROUND_MAX_QUEUE": str(MAX_QUEUE),
        "PLAYGROUND_REQUEST_TIMEOUT": "300",
        "PLAYGROUND_MAX_WAITING_PER_USER": "0",
    }
    with live_site(workdir, **env) as base:
        yield base, live_api_token(workdir), int((workdir / "server.pid").read_text())


def stream(base: str, token: str, max_tokens: int = 4) -> tuple[int, dict[str, str], str]:
    body = json.dumps(
        {"model": MODEL, "stream": True, "max_tokens": max_tokens, "messages": [{"role": "user", "content": PROMPT}]}
    ).encode()
    request = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            text = response.read().decode()
            return response.status, dict(response.headers), text
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def waiting(base: str) -> int:
    """How many requests wait in the model's line, as /health reports it."""
    with urllib.request.urlopen(f"{base}/health", timeout=60) as response:
        report = json.load(response)
    return next(m["waiting"] for m in report["models"] if m["id"] == MODEL)


@dataclass
class Burst:
    results: list[tuple[int, dict[str, str], str]]
    stragglers: int  # client threads that never got an answer
    peak_waiting: int  # the longest waiting line /health showed meanwhile

    @property
    def completed(self) -> int:
        return sum(1 for status, _, _ in self.results if status == 200)


def burst(base: str, token: str, max_tokens: int) -> Burst:
    results: list[tuple[int, dict[str, str], str]] = []
    lock = threading.Lock()
    start = threading.Barrier(BURST)
    peak = 0
    over = threading.Event()

    def one() -> None:
        start.wait()
        outcome = stream(base, token, max_tokens)
        with lock:
            results.append(outcome)

    def watch() -> None:
        nonlocal peak
        while not over.wait(0.05):  # a light poll: the burst, not /health, should load the server
            peak = max(peak, waiting(base))

    threads = [threading.Thread(target=one) for _ in range(BURST)]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    over.set()
    watcher.join()
    return Burst(results, sum(t.is_alive() for t in threads), peak)


def check(outcome: Burst) -> None:
    """What holds for any burst on any machine."""
    assert outcome.stragglers == 0 and len(outcome.results) == BURST  # no request lost or left hanging
    statuses = sorted({status for status, _, _ in outcome.results})
    assert set(statuses) <= {200, 429}, statuses  # no 5xx, no timeout
    for status, headers, text in outcome.results:
        if status == 200:
            assert text.rstrip().endswith("data: [DONE]"), text[-200:]
            assert '"finish_reason"' in text
        else:
            assert int(headers["Retry-After"]) >= 1
            assert json.loads(text)["error"]["code"] == "queue_full"
    # The first MAX_QUEUE arrivals find room in the line whatever the timing: at least that many are served.
    assert outcome.completed >= MAX_QUEUE, outcome.completed
    assert outcome.peak_waiting <= MAX_QUEUE, outcome.peak_waiting  # the bound holds


def settle(base: str) -> None:
    """Every request answered: let the server finish its bookkeeping (usage rows, freed buffers)."""
    assert waiting(base) == 0
    time.sleep(1)


def test_a_burst_of_100_streams_completes_or_gets_429_and_memory_comes_back(site):
    base, token, pid = site
    for _ in range(3):  # warm: the model loaded, the first requests' one-time allocations made
        assert stream(base, token)[0] == 200
    before = rss_mb(pid)

    for max_tokens in REPLY_TOKENS:
        first = burst(base, token, max_tokens)
        check(first)
        print(f"{max_tokens} tokens: {first.completed} served, peak waiting {first.peak_waiting}")
        if first.completed < BURST:  # the queue filled and the rest were refused
            break
    else:
        pytest.fail(
            f"the server served {BURST} concurrent replies of up to {max_tokens} tokens without its queue filling"
        )

    # A second, equal burst must not grow the server further: what the first burst took came back.
    settle(base)
    after_first = rss_mb(pid)
    check(burst(base, token, max_tokens))
    settle(base)
    after_second = rss_mb(pid)
    print(f"server RSS: {before:.0f} MB before, {after_first:.0f} after one burst, {after_second:.0f} after two")
    # The first burst may leave one-time allocations behind (connection buffers, the thread pool);
    # a second, equal burst must not add more: memory is back to its level, nothing accumulates.
    assert after_first - before < 0.20 * before, (before, after_first)
    assert after_second - after_first < 0.05 * before, (before, after_first, after_second)
    assert stream(base, token)[0] == 200  # still serving
