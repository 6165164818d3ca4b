"""Load and faults against a live Daphne with the real models (loopback, bounded in time).

100 concurrent streaming chat requests to one model whose queue holds 30: every request either completes
its stream or gets 429 with Retry-After, none gets a 5xx, the server keeps serving, and its memory comes
back to its level after the burst.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.livesite import live_api_token, live_site

MODEL = "smollm2-135m-instruct"
BURST = 100


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    workdir = tmp_path_factory.mktemp("burst-site")
    with live_site(workdir, PLAYGROUND_MAX_QUEUE="30", PLAYGROUND_REQUEST_TIMEOUT="120") as base:
        yield base, live_api_token(workdir), int((workdir / "server.pid").read_text())


def stream(base: str, token: str) -> tuple[int, dict[str, str], str]:
    body = json.dumps(
        {"model": MODEL, "stream": True, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi."}]}
    ).encode()
    request = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            text = response.read().decode()
            return response.status, dict(response.headers), text
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def burst(base: str, token: str) -> list[tuple[int, dict[str, str], str]]:
    results: list[tuple[int, dict[str, str], str]] = []
    lock = threading.Lock()
    start = threading.Barrier(BURST)

    def one() -> None:
        start.wait()
        outcome = stream(base, token)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(BURST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return results


def test_a_burst_of_100_streams_completes_or_gets_429_and_memory_comes_back(site):
    base, token, pid = site
    for _ in range(3):  # warm: the model loaded, the first requests' one-time allocations made
        assert stream(base, token)[0] == 200
    before = rss_mb(pid)

    results = burst(base, token)
    assert len(results) == BURST
    statuses = sorted({status for status, _, _ in results})
    assert set(statuses) <= {200, 429}, statuses
    for status, headers, text in results:
        if status == 200:
            assert text.rstrip().endswith("data: [DONE]"), text[-200:]
            assert '"finish_reason"' in text
        else:
            assert int(headers["Retry-After"]) >= 1
            assert json.loads(text)["error"]["code"] == "queue_full"
    completed = sum(1 for status, _, _ in results if status == 200)
    assert completed >= 31  # at least the running request and a full queue's worth were served
    assert completed < BURST  # and the queue bound was really reached

    # A second burst must not grow the server further: what the first burst took came back.
    after_first = rss_mb(pid)
    results = burst(base, token)
    assert {status for status, _, _ in results} <= {200, 429}
    time.sleep(1)
    after_second = rss_mb(pid)
    print(f"server RSS: {before:.0f} MB before, {after_first:.0f} after one burst, {after_second:.0f} after two")
    # The first burst may leave one-time allocations behind (connection buffers, the thread pool);
    # a second, equal burst must not add more: memory is back to its level, nothing accumulates.
    assert after_first - before < 0.20 * before, (before, after_first)
    assert after_second - after_first < 0.05 * before, (before, after_first, after_second)
    assert stream(base, token)[0] == 200  # still serving
