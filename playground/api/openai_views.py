"""The OpenAI-compatible endpoints under /v1/. Each view checks the method, reads the body, calls its dialect.

Status codes and error codes: playground/contract/errors.py (CODES), documented at /api/ and in the OpenAPI
document; the choices made where OpenAI's contract is silent: playground/contract/openai.py.
"""

from __future__ import annotations

import asyncio
import functools

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


def _query_tier(request: HttpRequest) -> str | None:
    return request.GET.get("serviceTier")


@api_view
async def models(request: HttpRequest) -> HttpResponse:
    require_method(request, "GET")
    return JsonResponse(openai.models_list())


@api_view
async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    require_method(request, "GET")
    return JsonResponse(openai.model_get(model_id=model_id))


async def _text(request: HttpRequest, *, chat: bool) -> HttpResponse:
    require_method(request, "POST")
    body = await json_body(request)
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
    return await _text(request, chat=True)


@api_view
async def completions(request: HttpRequest) -> HttpResponse:
    return await _text(request, chat=False)


@api_view
async def embeddings(request: HttpRequest) -> HttpResponse:
    require_method(request, "POST")
    result = await openai.embeddings(body=await json_body(request), query_tier=_query_tier(request))
    return served(JsonResponse(result), result["service_tier"])


async def _audio_text(request: HttpRequest, task: str) -> HttpResponse:
    require_method(request, "POST")
    fields, audio = multipart_body(request)
    rendered = await openai.transcription(task=task, fields=fields, audio=audio, query_tier=_query_tier(request))
    return served(HttpResponse(rendered.content, content_type=rendered.content_type), rendered.service_tier)


@api_view
async def transcriptions(request: HttpRequest) -> HttpResponse:
    return await _audio_text(request, "transcribe")


@api_view
async def translations(request: HttpRequest) -> HttpResponse:
    return await _audio_text(request, "translate")


@api_view
async def speech(request: HttpRequest) -> HttpResponse:
    require_method(request, "POST")
    rendered = await openai.speech(body=await json_body(request), query_tier=_query_tier(request))
    response = HttpResponse(rendered.content, content_type=rendered.content_type)
    response["Content-Disposition"] = f'attachment; filename="{rendered.filename}"'
    return served(response, rendered.service_tier)


@csrf_exempt
async def not_found(request: HttpRequest, path: str) -> HttpResponse:
    return error_response(Problem("unknown_url", f"no endpoint /v1/{path}"))
