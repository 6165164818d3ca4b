"""The OpenAI-compatible endpoints under /v1/. Each view checks the method, reads the body, calls its dialect.

Status codes and error codes: playground/contract/errors.py (CODES), documented at /api/ and in the OpenAPI
document; the choices made where OpenAI's contract is silent: playground/contract/openai.py.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from playground.api import openai
from playground.api.auth import api_view
from playground.api.http import (
    INLINE_PARSE_BYTES,
    error_response,
    event_stream,
    json_body,
    multipart_body,
    require_method,
    served,
)
from playground.contract.errors import Problem
from playground.endpoints.selectors import endpoint_models


def _query_tier(request: HttpRequest) -> str | None:
    return request.GET.get("serviceTier")


@api_view
async def models(request: HttpRequest) -> HttpResponse:
    require_method(request, "GET")
    listed = openai.models_list()
    # The token's project's deployed endpoints too, each by its id (is-<id>) with its URL and its model as root.
    token = request.api_token  # type: ignore[attr-defined]  # set by api_view (None on an engine node)
    if token is not None:
        listed["data"] += await sync_to_async(endpoint_models)(project_id=token.project_id)
    return JsonResponse(listed)


@api_view
async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    require_method(request, "GET")
    return JsonResponse(openai.model_get(model_id=model_id))


Adjust = Callable[[dict[str, Any]], dict[str, Any]] | None  # a deployed endpoint's changes to the body


async def text_response(request: HttpRequest, *, chat: bool, adjust: Adjust = None) -> HttpResponse:
    """/v1/chat/completions and /v1/completions; a deployed endpoint's routes call it with `adjust`."""
    require_method(request, "POST")
    body = await json_body(request)
    if adjust is not None:
        body = adjust(body)
    parse = functools.partial(openai.text_request, chat=chat, body=body, query_tier=_query_tier(request))
    # Building a grammar from a JSON Schema, or validating a large body, happens on a worker thread.
    off_loop = openai.needs_thread(body) or len(request.body) > INLINE_PARSE_BYTES
    parsed = await asyncio.to_thread(parse) if off_loop else parse()
    if not parsed.stream:
        result = await openai.text_complete(request=parsed)
        return served(JsonResponse(result), result["service_tier"])
    started = await openai.text_events_start(request=parsed)
    return served(event_stream(started.events), started.service_tier)


@api_view
async def chat_completions(request: HttpRequest) -> HttpResponse:
    return await text_response(request, chat=True)


@api_view
async def completions(request: HttpRequest) -> HttpResponse:
    return await text_response(request, chat=False)


async def embeddings_response(request: HttpRequest, *, adjust: Adjust = None) -> HttpResponse:
    require_method(request, "POST")
    body = await json_body(request)
    result = await openai.embeddings(body=body if adjust is None else adjust(body), query_tier=_query_tier(request))
    return served(JsonResponse(result), result["service_tier"])


@api_view
async def embeddings(request: HttpRequest) -> HttpResponse:
    return await embeddings_response(request)


async def audio_text_response(request: HttpRequest, task: str, *, adjust: Adjust = None) -> HttpResponse:
    require_method(request, "POST")
    fields, audio = multipart_body(request)
    if adjust is not None:
        fields = adjust(fields)
    rendered = await openai.transcription(task=task, fields=fields, audio=audio, query_tier=_query_tier(request))
    return served(HttpResponse(rendered.content, content_type=rendered.content_type), rendered.service_tier)


@api_view
async def transcriptions(request: HttpRequest) -> HttpResponse:
    return await audio_text_response(request, "transcribe")


@api_view
async def translations(request: HttpRequest) -> HttpResponse:
    return await audio_text_response(request, "translate")


async def speech_response(request: HttpRequest, *, adjust: Adjust = None) -> HttpResponse:
    require_method(request, "POST")
    body = await json_body(request)
    rendered = await openai.speech(body=body if adjust is None else adjust(body), query_tier=_query_tier(request))
    response = HttpResponse(rendered.content, content_type=rendered.content_type)
    response["Content-Disposition"] = f'attachment; filename="{rendered.filename}"'
    return served(response, rendered.service_tier)


@api_view
async def speech(request: HttpRequest) -> HttpResponse:
    return await speech_response(request)


@csrf_exempt
async def not_found(request: HttpRequest, path: str) -> HttpResponse:
    return error_response(Problem("unknown_url", f"no endpoint /v1/{path}"))
