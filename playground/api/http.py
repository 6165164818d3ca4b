"""HTTP adapters shared by every API route: reading bodies, method checks, error responses and server-sent events.

The dialects (openai.py, tgi.py) parse and render; the views stay thin; the work happens in playground/serving.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Callable, Mapping
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from playground.bodylimit import body_limit
from playground.contract import ai as ai_contract
from playground.contract.errors import Problem
from playground.contract.fields import json_parse

TIER_HEADER = "X-Service-Tier"
INLINE_PARSE_BYTES = 64 * 1024  # smaller bodies parse in microseconds, on the loop


# The error body's shape by route: a dialect with a shape of its own, by path prefix; every other route OpenAI's.
ERROR_SHAPES: dict[str, Callable[[Problem], dict[str, Any]]] = {"/ai/": ai_contract.error_body}


def error_body(problem: Problem, *, path: str = "") -> dict[str, Any]:
    """The error JSON in the shape of the dialect that serves `path` (Problem.body() unless ERROR_SHAPES says)."""
    render = next((shape for prefix, shape in ERROR_SHAPES.items() if path.startswith(prefix)), Problem.body)
    return render(problem)


def error_response(problem: Problem, *, path: str = "") -> JsonResponse:
    """The documented error JSON, in the shape of the route's dialect, with the code's status (and its headers:
    Retry-After, Allow, ...)."""
    response = JsonResponse(error_body(problem, path=path), status=problem.status)
    for name, value in problem.headers.items():
        response[name] = value
    return response


def require_method(request: HttpRequest, method: str) -> None:
    if request.method != method:
        raise Problem(
            "method_not_allowed",
            f"{request.method} is not allowed here; use {method}",
            headers={"Allow": method},
        )


def _too_large(size: int, limit: int) -> Problem:
    return Problem("request_too_large", f"the request body is {size} bytes; the limit here is {limit} bytes")


def _declared_size(request: HttpRequest) -> int:
    """The Content-Length, refused when over the route's limit (playground/bodylimit.py) before the body is read."""
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Problem("invalid_request", "the Content-Length header is not a number") from None
    limit = body_limit(request.path)
    if size > limit:
        raise _too_large(size, limit)
    return size


def body_bytes(request: HttpRequest) -> bytes:
    size = _declared_size(request)
    limit = body_limit(request.path)
    try:
        raw = request.body
    except RequestDataTooBig:
        raise _too_large(size, limit) from None
    if len(raw) > limit:
        raise _too_large(len(raw), limit)
    return raw


async def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object. The Content-Type is not checked: `curl -d` labels JSON as a form. A large body
    is parsed on a worker thread, so no request can hold the event loop (and every other stream) while it parses."""
    raw = body_bytes(request)
    body = json_parse(raw) if len(raw) <= INLINE_PARSE_BYTES else await asyncio.to_thread(json_parse, raw)
    if not isinstance(body, dict):
        raise Problem("invalid_json", "the body must be a JSON object")
    return body


def multipart_body(request: HttpRequest, *, file_field: str = "file") -> tuple[dict[str, str], bytes | None]:
    """(text fields, the uploaded file's bytes), refusing repeated fields and oversized bodies."""
    size = _declared_size(request)
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise Problem("invalid_content_type", "send the audio as multipart/form-data with a file field")
    try:
        post, files = request.POST, request.FILES
    except RequestDataTooBig:
        raise _too_large(size, body_limit(request.path)) from None
    fields: dict[str, str] = {}
    for key, values in post.lists():
        if len(values) > 1 and not key.endswith("[]"):
            raise Problem("invalid_parameter", f"{key} was sent {len(values)} times", param=key)
        fields[key] = ",".join(values)
    for key in files:
        if key != file_field:
            raise Problem("unknown_parameter", f"unknown file field {key!r}", param=key)
    upload = files.get(file_field)
    if upload is None:
        return fields, None
    if upload.size is not None and upload.size > body_limit(request.path):
        raise _too_large(upload.size, body_limit(request.path))
    return fields, upload.read()


def sse(data: Mapping[str, Any] | str) -> bytes:
    """One server-sent event."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def event_stream(events: AsyncIterable[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the tokens back
    return response


def served(response: HttpResponse, tier: str) -> HttpResponse:
    """Every successful /v1 response says which tier (cpu or gpu) served it."""
    response[TIER_HEADER] = tier
    return response
