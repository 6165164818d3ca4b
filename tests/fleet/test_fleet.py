"""A fleet on loopback: a web tier with no local models, routing to an engine node of this project (real models,
PLAYGROUND_ROLE=engine) and to llama-cpp-python's own server, both serving the real SmolLM2.

The official openai SDK talks to the web tier unchanged; the upstreams' own ledgers and metrics show what they did.
"""

from __future__ import annotations

import io
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from websockets.sync.client import connect as ws_connect

from tests.livesite import PASSWORD, REPO, USERNAME, free_port, live_api_token, live_site

CLUSTER = "fleet-cluster-token-0123456789"
METRICS = "fleet-metrics-token-0123"
SMOLLM2 = REPO / "var" / "models" / "smollm2-135m-instruct.Q4_1.gguf"
ASK = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]


@dataclass
class Fleet:
    web: str
    token: str
    web_dir: Path
    node: str
    node_dir: Path
    peer: subprocess.Popen[bytes]
    peer_url: str

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.web}/v1", api_key=self.token, max_retries=0, timeout=120)

    def health(self, model: str) -> dict[str, Any]:
        body = json.load(urllib.request.urlopen(f"{self.web}/health", timeout=10))
        (row,) = [m for m in body["models"] if m["id"] == model]
        return row

    def ledger(self, where: Path, *, at_least: int = 0) -> list[sqlite3.Row]:
        """The usage rows there, once there are `at_least` (a stream's row is written just after its last event)."""
        deadline = time.monotonic() + 15
        while True:
            with sqlite3.connect(where / "db.sqlite3") as db:
                db.row_factory = sqlite3.Row
                rows = db.execute("SELECT * FROM usage_usagerecord ORDER BY id").fetchall()
            if len(rows) >= at_least or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def node_metric(self, name: str) -> float:
        request = urllib.request.Request(f"{self.node}/metrics", headers={"Authorization": f"Bearer {METRICS}"})
        text = urllib.request.urlopen(request, timeout=10).read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def start_peer(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(SMOLLM2),
        "--model_alias",
        "smollm2",
        "--n_ctx",
        "2048",
        "--n_threads",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--interrupt_requests",
        "false",  # queue concurrent requests (its default cuts the running one off)
    ]
    proc = subprocess.Popen(command, stdout=open(workdir / "peer.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/models", timeout=2)
            return proc, url
        except OSError:
            assert proc.poll() is None, (workdir / "peer.log").read_text()[-2000:]
            time.sleep(0.2)
    raise AssertionError("llama_cpp.server did not start")


def catalog(path: Path, node: str, peer: str) -> Path:
    """The web tier's models: all remote."""
    node_v1 = f'url = "{node}/v1", api_key_env = "FLEET_CLUSTER_TOKEN"'
    path.write_text(
        f"""
[[model]]
id = "fleet-chat"
task = "text-to-text"
engine = "openai"
n_ctx = 2048
tokenizer = "{SMOLLM2}"
prices = {{ input_per_million_tokens = 1.0, output_per_million_tokens = 2.0 }}
defaults = {{ temperature = 0.0, max_tokens = 64 }}
upstreams = [
  {{ {node_v1}, model = "smollm2-135m-instruct", max_concurrency = 4 }},
  {{ url = "{peer}", model = "smollm2", max_concurrency = 1 }},
]

[[model]]
id = "fleet-node-chat"
task = "text-to-text"
engine = "openai"
n_ctx = 2048
upstreams = [{{ {node_v1}, model = "smollm2-135m-instruct" }}]

[[model]]
id = "fleet-complete"
task = "text-completion"
engine = "tgi"
n_ctx = 2048
defaults = {{ temperature = 0.0, max_tokens = 16 }}
upstreams = [{{ url = "{node}", model = "gemma-3-270m", api_key_env = "FLEET_CLUSTER_TOKEN" }}]

[[model]]
id = "fleet-tgi-chat"
task = "text-to-text"
engine = "tgi"
n_ctx = 2048
upstreams = [{{ url = "{node}", model = "smollm2-135m-instruct", api_key_env = "FLEET_CLUSTER_TOKEN" }}]

[[model]]
id = "fleet-embed"
task = "embeddings"
engine = "openai"
n_ctx = 512
upstreams = [{{ {node_v1}, model = "all-minilm-l6-v2" }}]

[[model]]
id = "fleet-whisper"
task = "speech-to-text"
engine = "openai"
upstreams = [{{ {node_v1}, model = "whisper-tiny.en" }}]
prices = {{ per_audio_minute = 0.01 }}

[[model]]
id = "fleet-voice"
task = "text-to-speech"
engine = "openai"
upstreams = [{{ {node_v1}, model = "piper-en-us-joe" }}]
"""
    )
    return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    node_dir, web_dir = tmp_path_factory.mktemp("node"), tmp_path_factory.mktemp("web")
    node_env = {
        "PLAYGROUND_ROLE": "engine",
        "PLAYGROUND_CLUSTER_TOKEN": CLUSTER,
        "PLAYGROUND_METRICS_TOKEN": METRICS,
        "PLAYGROUND_SERVE_MODELS": ",".join(
            ("smollm2-135m-instruct", "gemma-3-270m", "all-minilm-l6-v2", "whisper-tiny.en", "piper-en-us-joe")
        ),
        "PLAYGROUND_BULK_WORKERS": "0",
        "PLAYGROUND_THREADS": "1",
        "PLAYGROUND_REQUEST_TIMEOUT": "120",  # first loads and a busy CI machine: this tests routing, not speed
    }
    with live_site(node_dir, **node_env) as node:
        peer, peer_url = start_peer(node_dir)
        try:
            web_env = {
                "PLAYGROUND_SERVE_MODELS": "",
                "PLAYGROUND_CATALOG": str(catalog(web_dir / "fleet.toml", node, peer_url)),
                "FLEET_CLUSTER_TOKEN": CLUSTER,
                "PLAYGROUND_REQUEST_TIMEOUT": "120",
            }
            with live_site(web_dir, **web_env) as web:
                yield Fleet(web, live_api_token(web_dir), web_dir, node, node_dir, peer, peer_url)
        finally:
            peer.kill()
            peer.wait(10)


def test_the_openai_sdk_through_the_web_tier_to_remote_models(fleet: Fleet) -> None:
    client = fleet.client()
    listed = {m.id for m in client.models.list()}
    assert {"fleet-chat", "fleet-complete", "fleet-embed", "fleet-whisper", "fleet-voice"} <= listed
    assert "smollm2-135m-instruct" not in listed  # the web tier loads no model itself

    reply = client.chat.completions.create(model="fleet-node-chat", messages=ASK, max_tokens=12, temperature=0)
    assert reply.choices[0].message.content and reply.usage is not None and reply.usage.completion_tokens <= 12

    stream = client.chat.completions.create(
        model="fleet-node-chat",
        messages=ASK,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == reply.choices[0].message.content  # greedy: the same reply, streamed
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == reply.usage.completion_tokens

    completion = client.completions.create(model="fleet-complete", prompt="The capital of France is", max_tokens=8)
    assert completion.choices[0].text and completion.usage is not None and completion.usage.completion_tokens <= 8
    pieces = list(
        client.completions.create(model="fleet-complete", prompt="Once upon a time", max_tokens=8, stream=True)
    )
    assert "".join(p.choices[0].text for p in pieces if p.choices)

    # a TGI upstream's chat (its /v1/chat/completions, beside /generate_stream): the same reply, greedy
    tgi = client.chat.completions.create(model="fleet-tgi-chat", messages=ASK, max_tokens=12, temperature=0)
    assert tgi.choices[0].message.content == reply.choices[0].message.content

    embedded = client.embeddings.create(model="fleet-embed", input=["A man is eating food.", "A man eats bread."])
    assert len(embedded.data) == 2 and len(embedded.data[0].embedding) == 384
    assert embedded.usage.prompt_tokens > 0

    speech = client.audio.speech.create(model="fleet-voice", voice="alloy", input="The quick brown fox jumps.")
    wav = speech.read()
    with wave.open(io.BytesIO(wav)) as reader:
        assert reader.getnframes() / reader.getframerate() > 1.0
    heard = client.audio.transcriptions.create(model="fleet-whisper", file=("fox.wav", wav, "audio/wav"))
    assert "fox" in heard.text.lower()

    # The web tier's ledger has each request once, with the usage its upstream reported (the node's own ledger).
    web_rows = [r for r in fleet.ledger(fleet.web_dir, at_least=8) if r["model_id"] == "fleet-node-chat"]
    node_rows = [r for r in fleet.ledger(fleet.node_dir) if r["model_id"] == "smollm2-135m-instruct"][: len(web_rows)]
    assert len(web_rows) == 2
    assert [(r["prompt_tokens"], r["completion_tokens"]) for r in web_rows] == [
        (r["prompt_tokens"], r["completion_tokens"]) for r in node_rows
    ]
    assert not any(r["estimated"] for r in web_rows)


def _stream(fleet: Fleet, results: list[dict[str, Any]], max_tokens: int) -> None:
    """One streamed chat through the web tier, recorded: text received, whether it ended in an error event."""
    result: dict[str, Any] = {"text": "", "error": None, "done": False}
    response = requests.post(
        f"{fleet.web}/v1/chat/completions",
        json={"model": "fleet-chat", "messages": ASK, "max_tokens": max_tokens, "stream": True, "temperature": 0.7},
        headers={"Authorization": f"Bearer {fleet.token}"},
        stream=True,
        timeout=120,
    )
    result["status"] = response.status_code
    for line in response.iter_lines():
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            result["done"] = True
            break
        event = json.loads(data)
        if "error" in event:
            result["error"] = event["error"]["code"]
        elif event["choices"]:
            result["text"] += event["choices"][0]["delta"].get("content") or ""
    results.append(result)


def test_requests_spread_and_survive_an_upstream_killed_mid_run(fleet: Fleet) -> None:
    before = len(fleet.ledger(fleet.web_dir))
    # Spread: concurrent requests use both upstreams.
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=_stream, args=(fleet, results, 24)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(r["done"] and not r["error"] and r["text"] for r in results), results
    served = [u["requests"] for u in fleet.health("fleet-chat")["upstreams"]]
    assert all(n > 0 for n in served), served

    # Kill llama_cpp.server while replies stream from both upstreams.
    results = []
    threads = [threading.Thread(target=_stream, args=(fleet, results, 160)) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while fleet.health("fleet-chat")["upstreams"][1]["in_flight"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # its reply has begun
    fleet.peer.send_signal(signal.SIGKILL)
    fleet.peer.wait(10)
    for thread in threads:
        thread.join(180)
    assert len(results) == 8
    broken = [r for r in results if r["error"]]
    assert all(r["status"] == 200 and r["done"] for r in results), results
    # A reply cut off mid-stream ends with the documented error event; every other request was served in full.
    assert all(r["error"] == "upstream_error" and r["text"] for r in broken), broken
    assert len(broken) <= 1, results  # the peer serves one request at a time
    assert sum(1 for r in results if not r["error"]) >= 7

    # Later requests go to the survivor.
    results = []
    _stream(fleet, results, 8)
    assert results[0]["done"] and not results[0]["error"]
    upstreams = fleet.health("fleet-chat")["upstreams"]
    assert upstreams[1]["state"] == "down" and upstreams[0]["state"] == "healthy"

    # The ledger: one row per request, with exact (not estimated) usage.
    rows = fleet.ledger(fleet.web_dir, at_least=before + 6 + 8 + 1)[before:]
    time.sleep(0.5)  # nothing more comes
    assert len(fleet.ledger(fleet.web_dir)) == before + 6 + 8 + 1
    assert sum(r["outcome"] == "error" for r in rows) == len(broken)
    assert not any(r["estimated"] for r in rows)


def test_stop_in_the_playground_stops_the_upstream(fleet: Fleet) -> None:
    session = requests.Session()
    login = session.get(f"{fleet.web}/accounts/login/", timeout=30)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
    assert match
    session.post(
        f"{fleet.web}/accounts/login/",
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": match.group(1)},
        headers={"Referer": f"{fleet.web}/accounts/login/"},
        timeout=30,
    )
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    cancelled = fleet.node_metric("playground_cancelled_total")
    ws_url = fleet.web.replace("http://", "ws://") + "/ws/chat/"
    with ws_connect(ws_url, additional_headers={"Cookie": cookie, "Origin": fleet.web}) as ws:
        ws.send(
            json.dumps(
                {
                    "type": "generate",
                    "model": "fleet-node-chat",
                    "conversation": None,
                    "system": "",
                    "content": ASK[0]["content"],
                    "params": {"max_tokens": 1500},
                }
            )
        )
        frames: list[dict[str, Any]] = []
        while sum(f["type"] == "token" for f in frames) < 5:
            frames.append(json.loads(ws.recv(timeout=120)))
            assert frames[-1]["type"] != "error", frames[-1]
        ws.send(json.dumps({"type": "stop"}))
        while frames[-1]["type"] not in ("done", "error"):
            frames.append(json.loads(ws.recv(timeout=60)))
    assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] == "cancelled", frames[-1]
    deadline = time.monotonic() + 30
    while fleet.node_metric("playground_cancelled_total") == cancelled and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fleet.node_metric("playground_cancelled_total") == cancelled + 1  # the node stopped generating
    last = fleet.ledger(fleet.node_dir)[-1]
    assert last["outcome"] == "cancelled" and 0 < last["completion_tokens"] < 1500


def test_a_client_that_leaves_stops_the_upstream(fleet: Fleet) -> None:
    cancelled = fleet.node_metric("playground_cancelled_total")
    response = requests.post(
        f"{fleet.web}/v1/chat/completions",
        json={"model": "fleet-node-chat", "messages": ASK, "max_tokens": 1500, "stream": True},
        headers={"Authorization": f"Bearer {fleet.token}"},
        stream=True,
        timeout=60,
    )
    received = 0
    for line in response.iter_lines():
        received += line.startswith(b"data: ")
        if received == 5:
            break
    response.close()  # the client leaves
    deadline = time.monotonic() + 30
    while fleet.node_metric("playground_cancelled_total") == cancelled and time.monotonic() < deadline:
        time.sleep(0.2)
    # The node stopped generating: its own ledger says cancelled, long before 1,500 tokens.
    assert fleet.node_metric("playground_cancelled_total") == cancelled + 1
    last = fleet.ledger(fleet.node_dir)[-1]
    assert last["outcome"] == "cancelled" and 0 < last["completion_tokens"] < 1500
