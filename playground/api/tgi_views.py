"""TGI-compatible routes: /generate, /generate_stream and /info, for the default text model or any text model, and
POST / (TGI's compatibility route, which Hugging Face's InferenceClient(base_url) posts to)."""

from __future__ import annotations

import asyncio
import functools

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from playground.api import tgi
from playground.api.auth import api_view
from playground.api.http import INLINE_PARSE_BYTES, event_stream, json_body, require_method


async def _generate(request: HttpRequest, model_id: str, *, stream: bool, compat: bool = False) -> HttpResponse:
    require_method(request, "POST")
    body = await json_body(request)
    check = functools.partial(tgi.request_parse, body=body, model_id=model_id)
    # A long input (its image scan, its validation) or a grammar is checked on a worker thread, not the loop.
    off_loop = tgi.needs_thread(body) or len(request.body) > INLINE_PARSE_BYTES
    parsed = await asyncio.to_thread(check) if off_loop else check()
    if stream or parsed.stream:  # TGI's compatibility route switches on "stream" too
        events = tgi.EventStream(request=parsed)
        await events.start()
        return event_stream(events)
    body = await tgi.generate(request=parsed)
    # TGI's compatibility route wraps the answer in a list, as Hugging Face's Inference API does (and the
    # text-generation client reads payload[0]); /generate answers the object itself.
    return JsonResponse([body] if compat else body, safe=False)


@api_view
async def generate(request: HttpRequest, model_id: str | None = None) -> HttpResponse:
    return await _generate(request, model_id or settings.PLAYGROUND_DEFAULT_TEXT_MODEL, stream=False)


@api_view
async def generate_stream(request: HttpRequest, model_id: str | None = None) -> HttpResponse:
    return await _generate(request, model_id or settings.PLAYGROUND_DEFAULT_TEXT_MODEL, stream=True)


@api_view
async def info(request: HttpRequest, model_id: str | None = None) -> HttpResponse:
    require_method(request, "GET")
    return JsonResponse(tgi.info(model_id=model_id or settings.PLAYGROUND_DEFAULT_TEXT_MODEL))


@api_view
async def compat_generate(request: HttpRequest) -> HttpResponse:
    return await _generate(request, settings.PLAYGROUND_DEFAULT_TEXT_MODEL, stream=False, compat=True)


@csrf_exempt
async def root(request: HttpRequest) -> HttpResponse:
    """`/`: the catalog page for a browser (GET); TGI's compatibility route for API clients (POST)."""
    if request.method == "POST":
        return await compat_generate(request)
    from playground.catalog.views import catalog  # the page; a dependency of this route only

    return await sync_to_async(catalog)(request)
