"""A scriptable OpenAI-compatible (and TGI) upstream on loopback, for the remote engines' tests.

It answers like vLLM or llama-server would: streamed chat and completions (server-sent events, one piece per
token, usage when asked for), embeddings, transcriptions and speech, and TGI's /generate_stream. Tests change
its `mode` to make it fail in the ways real servers do, and read what it saw (requests, clients that left).
"""

from __future__ import annotations

import io
import json
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from inference import EnginePool, ModelSpec
from inference.catalog import UpstreamSpec
from inference.device import DeviceDecision

WORDS = ["Hello", " from", " the", " upstream", "."]


class FakeUpstream:
    """Modes: "ok"; "down" (503 on everything, the health check included); "busy" (429); "refuse" (400);
    "break" (the stream stops after `break_after` pieces: the connection is cut); "slow" (`delay` seconds between
    pieces, `pieces` of them); "no_usage" (streams without usage)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 0.0
        self.pieces = len(WORDS)
        self.break_after = 2
        self.requests: list[dict[str, Any]] = []  # each POST's path and body
        self.gone = 0  # streams whose client left before the end
        self.finished = 0  # streams sent to their end
        self.in_flight = 0
        self.max_in_flight = 0
        self.auth: list[str] = []  # the Authorization headers seen
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_finished(self, count: int, timeout: float = 5.0) -> int:
        """`finished` once it reaches `count` (a stream's last bytes are written just after its client has read
        [DONE]), or after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.finished < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.finished

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if upstream.mode == "down":
                    return self._json(503, {"error": {"message": "down"}})
                if self.path in ("/v1/models", "/health"):
                    return self._json(200, {"object": "list", "data": [{"id": "up-model", "object": "model"}]})
                self._json(404, {"error": {"message": "no such route"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                upstream.auth.append(self.headers.get("Authorization", ""))
                try:
                    body = (
                        json.loads(raw) if self.headers.get("Content-Type", "").startswith("application/json") else {}
                    )
                except ValueError:
                    body = {}
                with upstream._lock:
                    upstream.requests.append({"path": self.path, "body": body, "raw": raw})
                mode = upstream.mode
                if mode == "down":
                    return self._json(503, {"error": {"message": "overloaded"}})
                if mode == "busy":
                    return self._json(429, {"error": {"message": "too many requests"}})
                if mode == "refuse":
                    return self._json(400, {"error": {"message": "max_tokens is too large for this model"}})
                if self.path in ("/v1/chat/completions", "/v1/completions"):
                    return self._stream(body, chat=self.path.endswith("chat/completions"))
                if self.path == "/generate_stream":
                    return self._tgi(body)
                if self.path == "/v1/embeddings":
                    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    data = [
                        {"index": i, "embedding": [3.0, 4.0, float(i)], "object": "embedding"}
                        for i in range(len(inputs))
                    ]
                    return self._json(
                        200, {"data": data, "usage": {"prompt_tokens": 7 * len(inputs), "total_tokens": 7}}
                    )
                if self.path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
                    segments = [{"id": 0, "start": 0.0, "end": 1.5, "text": " Hello there."}]
                    return self._json(
                        200, {"text": "Hello there.", "language": "en", "duration": 1.5, "segments": segments}
                    )
                if self.path == "/v1/audio/speech":
                    wav = io.BytesIO()
                    with wave.open(wav, "wb") as out:
                        out.setnchannels(1)
                        out.setsampwidth(2)
                        out.setframerate(16000)
                        out.writeframes(b"\0\0" * 8000)
                    data = wav.getvalue()
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/wav")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                self._json(404, {"error": {"message": "no such route"}})

            def _events(self, events: Iterator[Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                with upstream._lock:
                    upstream.in_flight += 1
                    upstream.max_in_flight = max(upstream.max_in_flight, upstream.in_flight)
                try:
                    for event in events:
                        if event is None:  # cut the connection here
                            self.wfile.flush()
                            self.connection.shutdown(2)
                            return
                        data = b"data: " + (event if isinstance(event, bytes) else json.dumps(event).encode()) + b"\n\n"
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    with upstream._lock:
                        upstream.finished += 1
                except OSError:  # the client went away
                    with upstream._lock:
                        upstream.gone += 1
                    self.close_connection = True
                finally:
                    with upstream._lock:
                        upstream.in_flight -= 1

            def _pieces(self) -> Iterator[str | None]:
                mode = upstream.mode
                for n in range(upstream.pieces):
                    if mode == "break" and n == upstream.break_after:
                        yield None
                        return
                    if upstream.delay:
                        time.sleep(upstream.delay)
                    yield WORDS[n % len(WORDS)]

            def _stream(self, body: dict[str, Any], *, chat: bool) -> None:
                usage = (body.get("stream_options") or {}).get("include_usage") and upstream.mode != "no_usage"

                def events() -> Iterator[Any]:
                    sent = 0
                    for piece in self._pieces():
                        if piece is None:
                            yield None
                            return
                        sent += 1
                        choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
                        yield {"id": "x", "object": "chunk", "choices": [{**choice, "finish_reason": None}]}
                    last = {"index": 0, "delta": {}} if chat else {"index": 0, "text": ""}
                    yield {"id": "x", "object": "chunk", "choices": [{**last, "finish_reason": "length"}]}
                    if usage:
                        yield {"id": "x", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": sent}}
                    yield b"[DONE]"

                self._events(events())

            def _tgi(self, body: dict[str, Any]) -> None:
                def events() -> Iterator[Any]:
                    sent = 0
                    for piece in self._pieces():
                        if piece is None:
                            yield None
                            return
                        sent += 1
                        yield {"token": {"id": sent, "text": piece, "logprob": 0.0, "special": False}, "details": None}
                    yield {
                        "token": {"id": 0, "text": "", "logprob": 0.0, "special": True},
                        "generated_text": "".join(WORDS[:sent]),
                        "details": {"finish_reason": "length", "generated_tokens": sent, "seed": None},
                    }

                self._events(events())

        return Handler


def remote_spec(model_id: str, task: str, *upstreams: FakeUpstream, cap: int = 4) -> ModelSpec:
    """A catalog entry served by these upstreams (engine "openai"), with prices for a text task."""
    return ModelSpec(
        id=model_id,
        name=model_id,
        task=task,
        engine="openai",
        path=Path(),
        n_ctx=4096,
        upstreams=tuple(UpstreamSpec(url=u.url, model="up-model", max_concurrency=cap) for u in upstreams),
        prices={"input_per_million_tokens": 1.0, "output_per_million_tokens": 2.0} if "text" in task else {},
    )


@contextmanager
def installed_pool(*remote: ModelSpec) -> Iterator[EnginePool]:
    """The site's pool: the fake engines and these remote models."""
    from playground import engines
    from tests.conftest import FAKE_SPECS

    pool = EnginePool([*FAKE_SPECS, *remote], device=DeviceDecision("cpu", "tests"), threads=1)
    engines.set_pool(pool)
    try:
        yield pool
    finally:
        engines.set_pool(None)


@contextmanager
def fake_upstream() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream()
    upstream.thread.start()
    try:
        yield upstream
    finally:
        upstream.close()
