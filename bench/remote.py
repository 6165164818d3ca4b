"""A remote model through the web tier against calling its upstream directly, in one run (loopback only).

    .venv/bin/python bench/remote.py [--max-tokens 64] [--rounds 3] [--streams 1,8] [--node-threads 2]

The upstream is an engine node of this project (PLAYGROUND_ROLE=engine, serving only SmolLM2-135M-Instruct with
--node-threads threads, the cluster token as its bearer). The web tier is a live site (tests/livesite.py) with no
local models (PLAYGROUND_SERVE_MODELS="", PLAYGROUND_THREADS=1) whose extra catalog file (PLAYGROUND_CATALOG)
has one remote entry, `bench-remote`: engine "openai", the node's /v1 as its only upstream (max_concurrency 8,
the cluster token read from an environment variable), the GGUF as tokenizer.

Both are streamed chat completions (greedy, --max-tokens, stream_options.include_usage, a prompt that makes long
answers, unique per request), the same for both paths. At each concurrency, per round, direct then via the
web tier: aggregate completion tokens/s (the usage's completion_tokens over the wall time) and the median
time to first token; medians over --rounds. Printed: direct, via web, the throughput ratio (goal >= 0.95x)
and the TTFT the web tier adds (goal <= 10 ms). Also the web process's resident memory when idle (no
local models) and its CPU time per token streamed through it (/proc).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.livesite import free_port, live_api_token, live_site  # noqa: E402

MODEL = "smollm2-135m-instruct"
REMOTE = "bench-remote"
GGUF = ROOT / "var" / "models" / "smollm2-135m-instruct.Q4_1.gguf"
PROMPT = "Write a long, detailed story about a dragon who learns to cook, with many chapters."
CLUSTER_TOKEN = "bench-remote-cluster-token-0123456789"
TOKEN_ENV = "BENCH_REMOTE_CLUSTER_TOKEN"

Stream = tuple[float, int]  # (time to first token, completion tokens from the usage)

_serial = iter(range(1, 10**9))
_serial_lock = threading.Lock()


def chat_body(model: str, max_tokens: int) -> dict[str, Any]:
    with _serial_lock:  # a new number each time: no request reuses another's cached prompt
        n = next(_serial)
    return {
        "model": model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": f"{PROMPT} (Story #{n}.)"}],
    }


def stream(port: int, body: dict[str, Any], token: str) -> Stream:
    """One streamed chat completion: its time to first content and its completion tokens (usage)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    assert response.status == 200, response.read()[:300]
    first = 0.0
    tokens = 0
    for raw in response:
        line = raw.decode().strip()
        if line == "data: [DONE]":
            break
        if not line.startswith("data: "):
            continue
        event = json.loads(line[6:])
        if event.get("usage"):
            tokens = event["usage"]["completion_tokens"]
        choices = event.get("choices") or []
        if not first and choices and (choices[0].get("delta") or {}).get("content"):
            first = time.perf_counter()
    conn.close()
    assert first and tokens, f"no text or no usage from port {port}"
    return first - started, tokens


def concurrent(port: int, model: str, token: str, streams: int, max_tokens: int) -> tuple[float, float, int]:
    """`streams` streams at once: aggregate completion tokens/s over the wall time, median TTFT, tokens."""
    results: list[Stream] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            result = stream(port, chat_body(model, max_tokens), token)
        except BaseException as error:  # reported below, not lost in the thread
            with lock:
                errors.append(error)
            return
        with lock:
            results.append(result)

    started = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    tokens = sum(n for _, n in results)
    return tokens / wall, statistics.median(t for t, _ in results), tokens


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_node(workdir: Path, port: int, threads: int) -> subprocess.Popen[bytes]:
    """An engine node serving SmolLM2 on loopback (its own SQLite ledger, migrated first)."""
    env = {
        **os.environ,
        "PLAYGROUND_ROLE": "engine",
        "PLAYGROUND_CLUSTER_TOKEN": CLUSTER_TOKEN,
        "PLAYGROUND_SERVE_MODELS": MODEL,
        "PLAYGROUND_SQLITE_PATH": str(workdir / "engine.sqlite3"),
        "PLAYGROUND_THREADS": str(threads),
        "PLAYGROUND_WARM_MODELS": "1",
        "PLAYGROUND_BULK_WORKERS": "0",
        "PLAYGROUND_REQUEST_TIMEOUT": "600",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    log = workdir / "engine.log"
    daphne = str(Path(sys.executable).with_name("daphne"))
    proc = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "playground.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=open(log, "wb"),  # noqa: SIM115  (the child keeps it)
        stderr=subprocess.STDOUT,
    )
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health", headers={"Authorization": f"Bearer {CLUSTER_TOKEN}"})
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            sys.exit(f"engine node exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    sys.exit("engine node did not start")


def write_catalog(path: Path, node_port: int) -> Path:
    path.write_text(
        f"""[[model]]
id = "{REMOTE}"
name = "SmolLM2 135M Instruct (engine node)"
task = "text-to-text"
engine = "openai"
context_length = 8192
license = "Apache-2.0"
description = "bench/remote.py: SmolLM2 served by an engine node on loopback."
capabilities = ["chat", "streaming", "system-prompt", "stop-sequences", "seed"]
tokenizer = "{GGUF}"
options = {{ timeout = 600 }}  # seconds the web tier waits on a read (the default 60 cuts off a request queued there)
upstreams = [
    {{ url = "http://127.0.0.1:{node_port}/v1", model = "{MODEL}", api_key_env = "{TOKEN_ENV}", max_concurrency = 8 }},
]
"""
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", default="1,8", help="concurrencies, comma-separated")
    parser.add_argument("--node-threads", type=int, default=2, help="the engine node's PLAYGROUND_THREADS")
    args = parser.parse_args()
    levels = [int(s) for s in args.streams.split(",")]
    n = args.max_tokens

    workdir = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    node_port = free_port()
    node = start_node(workdir, node_port, args.node_threads)
    try:
        env = {
            "PLAYGROUND_SERVE_MODELS": "",
            "PLAYGROUND_CATALOG": str(write_catalog(workdir / "remote.toml", node_port)),
            "PLAYGROUND_THREADS": "1",
            "PLAYGROUND_REQUEST_TIMEOUT": "600",
            TOKEN_ENV: CLUSTER_TOKEN,
        }
        with live_site(workdir, **env) as base:
            web_port = int(base.rsplit(":", 1)[1])
            web_pid = int((workdir / "server.pid").read_text())
            token = live_api_token(workdir)
            idle_rss = rss_mib(web_pid)

            def direct(streams: int) -> tuple[float, float, int]:
                return concurrent(node_port, MODEL, CLUSTER_TOKEN, streams, n)

            def via_web(streams: int) -> tuple[float, float, int]:
                return concurrent(web_port, REMOTE, token, streams, n)

            direct(1), via_web(1)  # warm-up: the node's model, the web tier's tokenizer and connections
            print(
                f"{MODEL} on an engine node ({args.node_threads} threads), greedy, {n} max tokens, "
                f"medians of {args.rounds} rounds"
            )
            web_cpu = web_tokens = 0.0
            for streams in levels:
                rows: dict[str, list[tuple[float, float]]] = {"direct": [], "web": []}
                for _ in range(args.rounds):
                    rate, ttft, _ = direct(streams)
                    rows["direct"].append((rate, ttft))
                    cpu = cpu_seconds(web_pid)
                    rate, ttft, tokens = via_web(streams)
                    web_cpu += cpu_seconds(web_pid) - cpu
                    web_tokens += tokens
                    rows["web"].append((rate, ttft))
                d_rate, d_ttft = (statistics.median(v) for v in zip(*rows["direct"], strict=True))
                w_rate, w_ttft = (statistics.median(v) for v in zip(*rows["web"], strict=True))
                print(
                    f"  {streams} stream(s): direct {d_rate:6.1f} tok/s, TTFT {d_ttft * 1000:6.1f} ms | "
                    f"via web {w_rate:6.1f} tok/s, TTFT {w_ttft * 1000:6.1f} ms | "
                    f"ratio {w_rate / d_rate:.3f} (goal >= 0.95), TTFT added {(w_ttft - d_ttft) * 1000:+.1f} ms "
                    "(goal <= 10)"
                )
            print(
                f"web process (no local models): RSS {idle_rss:.0f} MiB idle, {rss_mib(web_pid):.0f} MiB after; "
                f"CPU {web_cpu / max(web_tokens, 1) * 1000:.2f} ms per streamed token "
                f"({web_cpu:.1f} s over {web_tokens:.0f} tokens)"
            )
    finally:
        node.terminate()
        node.wait(30)


if __name__ == "__main__":
    main()
