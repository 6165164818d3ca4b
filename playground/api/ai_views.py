"""The unified-inference endpoints under /ai/. Each view checks the method, reads the body, calls its dialect
(playground/api/ai.py); ``api_view`` authenticates, applies the token's limits and renders every refusal in this
dialect's error shape (playground/api/http.py picks it for /ai/ paths)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from playground.api import ai
from playground.api.auth import api_view
from playground.api.http import INLINE_PARSE_BYTES, error_response, event_stream, json_body, require_method
from playground.contract.errors import Problem


@api_view
async def models(request: HttpRequest) -> HttpResponse:
    require_method(request, "GET")
    return JsonResponse(ai.models_list())


@api_view
async def chat(request: HttpRequest) -> HttpResponse:
    require_method(request, "POST")
    body = await json_body(request)
    check = functools.partial(ai.chat_request, body=body)
    # Building the tools' grammar, or validating a large body, happens on a worker thread.
    parsed = await asyncio.to_thread(check) if _off_loop(request, body) else check()
    if parsed.stream:
        return event_stream(await ai.chat_events_start(request=parsed))
    return JsonResponse(await ai.chat_complete(request=parsed))


@api_view
async def generate(request: HttpRequest) -> HttpResponse:
    require_method(request, "POST")
    body = await json_body(request)
    check = functools.partial(ai.generate_request, body=body)
    parsed = await asyncio.to_thread(check) if _off_loop(request, body) else check()
    return JsonResponse(await ai.generate(request=parsed))


@api_view
async def embeddings(request: HttpRequest) -> HttpResponse:
    require_method(request, "POST")
    return JsonResponse(await ai.embeddings(body=await json_body(request)))


def _off_loop(request: HttpRequest, body: dict[str, Any]) -> bool:
    return ai.needs_thread(body) or len(request.body) > INLINE_PARSE_BYTES


@csrf_exempt
async def not_found(request: HttpRequest, path: str) -> HttpResponse:
    return error_response(Problem("unknown_url", f"no endpoint /ai/{path}"), path=request.path)
