"""playground/bodylimit.py: the route's body limit, refused from Content-Length or cut off in a chunked body."""

from __future__ import annotations

import json
from typing import Any

from playground.bodylimit import BodyLimit, body_limit


def _scope(path: str, length: int | None = None) -> dict[str, Any]:
    headers = [(b"content-length", str(length).encode())] if length is not None else []
    return {"type": "http", "path": path, "headers": headers}


async def _run(scope: dict[str, Any], chunks: list[bytes]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Run BodyLimit around an app that reads the whole body, then answers 200."""
    incoming = [{"type": "http.request", "body": c, "more_body": n < len(chunks) - 1} for n, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []
    read: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # what Django does: the request was aborted, nothing is answered
            read.append(message["body"])
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    await BodyLimit(app)(scope, receive, send)
    return sent, read


def test_each_route_has_its_limit(settings):
    settings.PLAYGROUND_MAX_JSON_BYTES, settings.PLAYGROUND_MAX_BODY_BYTES = 100, 1000
    assert body_limit("/v1/chat/completions") == body_limit("/generate") == body_limit("/accounts/login/") == 100
    assert body_limit("/v1/audio/transcriptions") == body_limit("/v1/audio/translations") == 1000
    assert body_limit("/bulk/datasets/3/upload/") > 500 * 1024 * 1024


async def test_a_declared_length_over_the_limit_is_refused_before_the_app_reads(settings):
    settings.PLAYGROUND_MAX_JSON_BYTES = 100
    sent, read = await _run(_scope("/v1/chat/completions", 10**9), [b"x"])
    assert read == [] and sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_too_large"
    sent, _read = await _run(_scope("/ai/chat", 10**9), [b"x"])  # in the shape of the dialect that serves it
    assert json.loads(sent[1]["body"])["error"] | {"message": ""} == {
        "code": "request_too_large",
        "message": "",
        "status": 413,
    }


async def test_a_chunked_body_is_cut_off_at_the_limit(settings):
    settings.PLAYGROUND_MAX_JSON_BYTES = 100
    sent, read = await _run(_scope("/v1/chat/completions"), [b"x" * 60, b"x" * 60, b"x" * 60])
    assert read == [b"x" * 60]  # the second chunk crossed the limit and was never handed over
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]


async def test_a_body_within_the_limit_reaches_the_app(settings):
    settings.PLAYGROUND_MAX_JSON_BYTES = 100
    sent, read = await _run(_scope("/v1/chat/completions", 90), [b"x" * 90])
    assert read == [b"x" * 90] and sent[0]["status"] == 200
