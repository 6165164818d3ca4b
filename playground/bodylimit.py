"""Request bodies refused before they are read, per route: a small limit for the JSON APIs and pages, the audio
limit for /v1/audio/, the upload limit only for bulk uploads.

Two layers, one rule (`body_limit`):
- Daphne (what `./dev run` and the deployment serve with) reads a whole request body before it calls the
  application. `install_daphne_limit()` hooks its request class so a body whose Content-Length is over the limit is
  answered 413 as soon as the headers arrive (a client sending `Expect: 100-continue` never sends it), and a chunked
  body is cut off at the limit.
- `BodyLimit` is the same check as ASGI middleware, for any other ASGI server: 413 from Content-Length at once, and
  a chunked body stops being read at the limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from playground.contract.errors import Problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MULTIPART_SLACK = 1024 * 1024  # the form fields and boundaries around an uploaded file

# A deployed endpoint's audio uploads (playground/endpoints/api_urls.py) weigh what /v1/audio/ allows.
ENDPOINT_AUDIO = re.compile(r"/project/p-\d+/endpoint/is-\d+/v1/audio/(?:transcriptions|translations)")


def body_limit(path: str) -> int:
    """The most bytes a request body to `path` may have."""
    if path.startswith("/bulk/"):
        from playground.bulk.csvfile import MAX_BYTES

        return MAX_BYTES + MULTIPART_SLACK
    if path.startswith(("/v1/audio/transcriptions", "/v1/audio/translations")) or ENDPOINT_AUDIO.match(path):
        return int(settings.PLAYGROUND_MAX_BODY_BYTES)
    return int(settings.PLAYGROUND_MAX_JSON_BYTES)


def _refusal(size: int | None, limit: int, path: str) -> tuple[bytes, bytes]:
    """(status line and headers, body) of the 413, in the error shape of the dialect that serves `path`."""
    from playground.api.http import error_body  # http imports this module

    said = f"{size} bytes" if size is not None else "more bytes than that"
    problem = Problem("request_too_large", f"the request body is {said}; the limit here is {limit} bytes")
    body = json.dumps(error_body(problem, path=path)).encode()
    head = (
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    return head, body


def install_daphne_limit() -> None:
    """Hook Daphne's request class (once): refuse an oversized body before reading it."""
    from daphne.http_protocol import WebRequest

    if getattr(WebRequest, "_playground_body_limit", False):
        return
    got_length = WebRequest.gotLength
    content_chunk = WebRequest.handleContentChunk

    def refuse(request: Any, size: int | None, limit: int) -> None:
        import io

        request._body_refused = True
        request.content = io.BytesIO()  # nothing more is kept
        head, body = _refusal(size, limit, request._body_path)
        request.channel.transport.write(head + body)
        request.channel.loseConnection()

    def limited_got_length(self: Any, length: int | None) -> None:
        raw_path = getattr(self.channel, "_path", b"/") or b"/"
        self._body_path = raw_path.split(b"?", 1)[0].decode("latin-1")
        self._body_limit = body_limit(self._body_path)
        self._body_seen = 0
        self._body_refused = False
        if length is not None and length > self._body_limit:
            refuse(self, length, self._body_limit)
            return
        got_length(self, length)

    def limited_content_chunk(self: Any, data: bytes) -> None:
        if self._body_refused:
            return
        self._body_seen += len(data)
        if self._body_seen > self._body_limit:
            refuse(self, None, self._body_limit)
            return
        content_chunk(self, data)

    WebRequest.gotLength = limited_got_length
    WebRequest.handleContentChunk = limited_content_chunk
    WebRequest._playground_body_limit = True


class BodyLimit:
    """ASGI middleware: 413 for a body over `body_limit(path)`, from Content-Length before the application runs,
    or as soon as a chunked body passes the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope.get("path", "/"))
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, int(declared), limit, scope.get("path", "/"))
            return
        seen = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    return {"type": "http.disconnect"}  # the application stops reading; we answer
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if over:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, watched_send)
        if over and not started:
            await self._refuse(send, None, limit, scope.get("path", "/"))

    async def _refuse(self, send: Send, size: int | None, limit: int, path: str) -> None:
        _, body = _refusal(size, limit, path)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
