"""TGI-compatible routes: /generate, /generate_stream and /info, for the default text model or any text model."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from playground.api import tgi
from playground.api.auth import api_view
from playground.api.errors import ApiError


def _require(request: HttpRequest, method: str) -> None:
    if request.method != method:
        raise ApiError(405, f"use {method} for this endpoint", code="method_not_allowed", headers={"Allow": method})


def _too_large() -> ApiError:
    limit = settings.PLAYGROUND_MAX_BODY_BYTES
    return ApiError(413, f"the request body is larger than the limit of {limit} bytes", code="request_too_large")


def _body(request: HttpRequest) -> bytes:
    """The raw body; by its Content-Length first, so an oversized body is refused before it is read."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "the Content-Length header is not a number") from None
    if declared > settings.PLAYGROUND_MAX_BODY_BYTES:
        raise _too_large()
    try:
        body = request.body
    except RequestDataTooBig:
        raise _too_large() from None
    if len(body) > settings.PLAYGROUND_MAX_BODY_BYTES:
        raise _too_large()
    return body


async def _stream(request: tgi.TgiRequest) -> HttpResponse:
    stream = tgi.EventStream(
        job=tgi.generation_start(request=request), request=request, timeout=settings.PLAYGROUND_REQUEST_TIMEOUT
    )
    await stream.start()
    return StreamingHttpResponse(
        stream, content_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


async def _generate(request: HttpRequest, model_id: str, *, stream: bool) -> HttpResponse:
    _require(request, "POST")
    parsed = tgi.request_parse(body=_body(request), model_id=model_id)
    if stream or parsed.stream:  # TGI's compatibility route switches on "stream" too
        return await _stream(parsed)
    job = tgi.generation_start(request=parsed)
    pieces = await tgi.generation_collect(job=job, timeout=settings.PLAYGROUND_REQUEST_TIMEOUT)
    return JsonResponse(tgi.generate_body(request=parsed, pieces=pieces))


@api_view
async def generate(request: HttpRequest, model_id: str | None = None) -> HttpResponse:
    return await _generate(request, model_id or settings.PLAYGROUND_DEFAULT_TEXT_MODEL, stream=False)


@api_view
async def generate_stream(request: HttpRequest, model_id: str | None = None) -> HttpResponse:
    return await _generate(request, model_id or settings.PLAYGROUND_DEFAULT_TEXT_MODEL, stream=True)


@api_view
async def info(request: HttpRequest, model_id: str | None = None) -> HttpResponse:
    _require(request, "GET")
    return JsonResponse(tgi.info_body(model_id=model_id or settings.PLAYGROUND_DEFAULT_TEXT_MODEL))


@csrf_exempt
async def root(request: HttpRequest) -> HttpResponse:
    """`/`: the catalog page for a browser (GET); TGI's compatibility route for API clients (POST).

    Hugging Face's `InferenceClient(base_url)` and other TGI clients post their requests to the server's root.
    """
    if request.method == "POST":
        return await generate(request)
    from playground.catalog.views import catalog  # the page; a dependency of this route only

    return await sync_to_async(catalog)(request)
