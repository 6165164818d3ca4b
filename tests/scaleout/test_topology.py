"""The scale-out configuration for real: nginx (Debian's) in front of two Daphne processes, two bulk worker
processes, PostgreSQL as the database and Redis as channel layer, cache and task queue (deploy/topology.py),
all on loopback with the real models."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from websockets.sync.client import connect as ws_connect

from deploy.topology import Topology

MODEL = "smollm2-135m-instruct"
USERNAME, PASSWORD = "scale-user", "scale-pass-123!"
PROMPTS = [f"Write three words about the number {n}." for n in range(1, 13)]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topo = Topology(
        tmp_path_factory.mktemp("topology"),
        web=2,
        workers=2,
        database="playground_scaleout_test",
        redis_db=14,
        extra_env={"PLAYGROUND_BULK_LEASE": "3", "PLAYGROUND_THREADS": "1"},
    )
    topo.start()
    topo.manage(
        "shell",
        "-c",
        f"from django.contrib.auth.models import User; User.objects.create_user({USERNAME!r}, password={PASSWORD!r})",
    )
    yield topo
    topo.stop()


@pytest.fixture(scope="module")
def token(topology: Topology) -> str:
    return topology.manage("create_api_token", "--user", USERNAME, "--label", "scale-out").stdout.strip()


def db(topology: Topology) -> psycopg.Connection:
    return psycopg.connect(topology.env["PLAYGROUND_DATABASE_URL"], autocommit=True)


def chat_stream(base: str, token: str, *, forwarded_for: str | None = None) -> tuple[int, str, str]:
    """POST a streaming chat completion; returns status, the text streamed, and which web process answered."""
    body = json.dumps(
        {"model": MODEL, "stream": True, "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi."}]}
    ).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    request = urllib.request.Request(f"{base}/v1/chat/completions", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            text, done = "", False
            for raw in response:
                line = raw.decode().strip()
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    delta = json.loads(line[6:])["choices"]
                    text += delta[0]["delta"].get("content") or "" if delta else ""
            assert done, "the stream ended without [DONE]"
            return response.status, text, response.headers.get("X-Upstream", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get("X-Upstream", "")


def test_chat_streams_through_nginx_reach_every_web_process(topology: Topology, token: str):
    upstreams = set()
    for _ in range(4):
        status, text, upstream = chat_stream(topology.base, token)
        assert status == 200 and text.strip()
        upstreams.add(upstream)
    assert upstreams == {f"127.0.0.1:{port}" for port in topology.web_ports}


def test_an_auth_ban_reached_through_one_process_holds_on_the_other(topology: Topology, token: str):
    client = "203.0.113.7"  # as nginx would forward it; the web processes trust 127.0.0.1 as a proxy
    for _ in range(5):
        status, _, _ = chat_stream(topology.web_base(0), "gp_wrong", forwarded_for=client)
        assert status in (401, 403)
    status, body, _ = chat_stream(topology.web_base(1), token, forwarded_for=client)
    assert status == 403 and json.loads(body)["error"]["code"] == "banned", body
    status, _, _ = chat_stream(topology.web_base(1), token, forwarded_for="203.0.113.8")  # another client is fine
    assert status == 200


def test_a_bulk_job_shared_by_two_workers_survives_one_being_killed(topology: Topology):
    create = (
        "from django.contrib.auth.models import User; from playground.bulk.models import Dataset, Prompt; "
        "from playground.bulk.services import job_create; "
        f"u = User.objects.get(username={USERNAME!r}); d = Dataset.objects.create(user=u, name='scale'); "
        f"Prompt.objects.bulk_create(Prompt(dataset=d, position=n, source_line=n + 1, text=t) "
        f"for n, t in enumerate({PROMPTS!r}, 1)); "
        f"print(job_create(user=u, dataset=d, model_id={MODEL!r}, params={{'max_tokens': 16}}).pk)"
    )
    job_id = int(topology.manage("shell", "-c", create).stdout.split()[-1])
    with db(topology) as conn:

        def counts() -> tuple[int, int]:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE state = 'done'), count(DISTINCT split_part(worker, ':', 2)) "
                "FROM bulk_bulkitem WHERE job_id = %s",
                [job_id],
            ).fetchone()
            return row[0], row[1]

        deadline = time.monotonic() + 180
        while counts() != (counts()[0], 2) or counts()[0] < 2:  # both worker processes hold part of it
            assert time.monotonic() < deadline, counts()
            time.sleep(0.2)
        assert counts()[0] < len(PROMPTS)
        topology.kill_worker(0)  # SIGKILL, mid-job
        while conn.execute("SELECT status FROM bulk_bulkjob WHERE id = %s", [job_id]).fetchone()[0] not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline, counts()
            time.sleep(0.3)
        status = conn.execute("SELECT status FROM bulk_bulkjob WHERE id = %s", [job_id]).fetchone()[0]
        rows = conn.execute(
            "SELECT p.position, i.state FROM bulk_bulkitem i JOIN bulk_prompt p ON p.id = i.prompt_id "
            "WHERE i.job_id = %s ORDER BY p.position",
            [job_id],
        ).fetchall()
    topology.start_worker(0)
    assert status == "completed"
    assert rows == [(n, "done") for n in range(1, len(PROMPTS) + 1)]  # exactly one result per prompt


def test_a_websocket_survives_the_other_web_process_restarting(topology: Topology):
    session = requests.Session()
    login = session.get(f"{topology.base}/accounts/login/", timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    session.post(
        f"{topology.base}/accounts/login/",
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{topology.base}/accounts/login/"},
        timeout=30,
    )
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    ws_url = topology.base.replace("http://", "ws://") + "/ws/chat/"
    with ws_connect(ws_url, additional_headers={"Cookie": cookie, "Origin": topology.base}) as ws:
        upstream = ws.response.headers.get("X-Upstream", "")
        mine = next(n for n, port in enumerate(topology.web_ports) if upstream.endswith(f":{port}"))
        topology.restart_web(1 - mine)
        ws.send(
            json.dumps(
                {
                    "type": "generate",
                    "mode": "chat",
                    "model": MODEL,
                    "conversation": None,
                    "system": "",
                    "content": "Say hello.",
                    "params": {"max_tokens": 8},
                }
            )
        )
        frames = []
        while not frames or frames[-1]["type"] not in ("done", "error"):
            frames.append(json.loads(ws.recv(timeout=120)))
    assert frames[-1]["type"] == "done", frames
    assert "".join(f["text"] for f in frames if f["type"] == "token").strip()
    assert Path(topology.workdir / f"web-{1 - mine}.log").exists()
