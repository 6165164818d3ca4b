"""A hostile-input corpus against a live Daphne (fake engines): every case gets its documented status and error JSON
(or an error frame on the socket), the server keeps serving, and /health keeps answering meanwhile.

/health is polled all through the corpus from another thread; the slowest answer is printed and must stay under
HEALTH_WITHIN seconds: a request that held the event loop (a quadratic regex, JSON parsed on the loop, a body
read before it is refused) would show up there as a stall of seconds.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import websockets.sync.client

from tests.api.test_fuzz import fake_catalog
from tests.livesite import PASSWORD, USERNAME, live_api_token, live_site

HEALTH_WITHIN = 0.2  # seconds: what the issue asks of /health while hostile requests are served
MB = 1024 * 1024


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    workdir = tmp_path_factory.mktemp("hostile-site")
    env = {"PLAYGROUND_CATALOG": str(fake_catalog(workdir / "fake.toml")), "PLAYGROUND_AUTH_FAILURE_LIMIT": "1000"}
    with live_site(workdir, **env) as base:
        yield base, live_api_token(workdir)


class HealthWatch:
    """Polls /health every 50 ms on its own thread; keeps the slowest answer."""

    def __init__(self, base: str) -> None:
        self.base, self.slowest, self.failures = base, 0.0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                urllib.request.urlopen(self.base + "/health", timeout=10).read()
            except OSError:
                self.failures += 1
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.stop.wait(0.05)

    def __enter__(self) -> HealthWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _post(base: str, token: str, path: str, body: bytes, **headers: str) -> tuple[int, Any]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request(
        "POST", path, body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers}
    )
    response = connection.getresponse()
    data = response.read()
    connection.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data


def _raw(base: str, request: bytes) -> bytes:
    """Send raw bytes on a socket; what comes back before the server closes (or 10 s)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it may answer and close before the end
            conn.sendall(request)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):  # the server may reset after answering
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def _code(answer: tuple[int, Any]) -> tuple[int, str | None]:
    status, body = answer
    return status, body["error"]["code"] if isinstance(body, dict) and "error" in body else None


CHAT = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def test_hostile_requests_get_their_errors_and_never_stall_the_server(site: tuple[str, str]) -> None:
    base, token = site
    cases: list[tuple[str, str, bytes, tuple[int, str | None]]] = [
        # quadratic-regex bait: a megabyte of unclosed image tags (no image: generated), of Markdown image openers
        ("image tags", "/generate", json.dumps({"inputs": "<image>" * 150_000}).encode(), (200, None)),
        (
            "markdown bait",
            "/generate",
            json.dumps({"inputs": "![" * 400_000 + " ![a](b)"}).encode(),
            (400, "image_input_not_supported"),
        ),
        # malformed JSON of every kind
        ("deep nesting", "/v1/chat/completions", b"[" * 100_000, (400, "invalid_json")),
        (
            "deep in a field",
            "/v1/chat/completions",
            b'{"messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
            (400, "invalid_json"),
        ),
        ("NaN", "/v1/chat/completions", b'{"model": "x", "temperature": NaN}', (400, "invalid_json")),
        ("not UTF-8", "/v1/chat/completions", b'{"model": "\xff\xfe"}', (400, "invalid_json")),
        ("not an object", "/v1/embeddings", b"[1, 2, 3]", (400, "invalid_json")),
        (
            "a 3 MB prompt",
            "/v1/chat/completions",
            json.dumps({**CHAT, "messages": [{"role": "user", "content": "x " * (3 * MB // 2)}]}).encode(),
            (400, "context_length_exceeded"),
        ),
        # work over its caps
        (
            "stop too long",
            "/v1/chat/completions",
            json.dumps({**CHAT, "stop": ["x" * 10_000]}).encode(),
            (400, "invalid_parameter"),
        ),
        (
            "too many inputs",
            "/v1/embeddings",
            json.dumps({"model": "all-minilm-l6-v2", "input": ["a"] * 5000}).encode(),
            (400, "invalid_parameter"),
        ),
    ]
    with HealthWatch(base) as watch:
        for name, path, body, expected in cases:
            answer = _post(base, token, path, body)
            status, code = _code(answer)
            assert status == expected[0], (name, answer if not isinstance(answer[1], bytes) else answer[1][:200])
            if expected[1] is not None:
                assert code == expected[1], (name, answer)

        # 500 MB announced, nothing sent: answered 413 from the headers, at once (a client that sends the body
        # anyway sees the connection close after the 413)
        announced = (
            b"POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 524288000\r\n\r\n"
        )
        reply = _raw(base, announced)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        assert b'"request_too_large"' in reply
        # a chunked body is cut off at the limit
        chunk = b"a" * MB
        chunked = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 6
        )
        reply = _raw(base, chunked)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]

        # the Playground's socket: a malformed frame is an error frame, and the socket stays open
        cookie = _session_cookie(base)
        with websockets.sync.client.connect(
            base.replace("http", "ws") + "/ws/chat/",
            additional_headers={"Cookie": cookie, "Origin": base},
            max_size=2**22,
        ) as ws:
            ws.send("[" * 100_000)
            frame = json.loads(ws.recv(timeout=10))
            assert (frame["type"], frame["code"]) == ("error", "invalid_json")
            ws.send(json.dumps({"type": "generate", "model": "smollm2-135m-instruct", "content": "hi"}))
            kinds = set()
            while "done" not in kinds:
                kinds.add(json.loads(ws.recv(timeout=30))["type"])

        # the speech socket too: a malformed message is an error frame
        with websockets.sync.client.connect(
            base.replace("http", "ws") + "/ws/speech/", additional_headers={"Cookie": cookie, "Origin": base}
        ) as ws:
            ws.send("[" * 4000)
            frame = json.loads(ws.recv(timeout=10))
            assert (frame["type"], frame["code"]) == ("error", "invalid_json")

        # and the Compare socket: a malformed frame is an error frame, and the socket stays open
        with websockets.sync.client.connect(
            base.replace("http", "ws") + "/ws/compare/",
            additional_headers={"Cookie": cookie, "Origin": base},
            max_size=2**22,
        ) as ws:
            ws.send("[" * 100_000)
            frame = json.loads(ws.recv(timeout=10))
            assert (frame["type"], frame["code"]) == ("error", "invalid_json")
            ws.send(json.dumps({"type": "generate", "panes": "many"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "error"

        # and the API still serves
        assert _post(base, token, "/v1/chat/completions", json.dumps(CHAT).encode())[0] == 200
    print(f"slowest /health while the corpus ran: {watch.slowest * 1000:.0f} ms")
    assert watch.failures == 0
    assert watch.slowest < HEALTH_WITHIN


def _session_cookie(base: str) -> str:
    """Log in through the login form; the session cookie."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    page = opener.open(base + "/accounts/login/").read().decode()
    csrf = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    data = f"username={USERNAME}&password={PASSWORD}&csrfmiddlewaretoken={csrf}".encode()
    request = urllib.request.Request(base + "/accounts/login/", data=data, headers={"Referer": base + "/"})
    opener.open(request).read()
    cookies = next(h for h in opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor)).cookiejar
    return "; ".join(f"{c.name}={c.value}" for c in cookies)
