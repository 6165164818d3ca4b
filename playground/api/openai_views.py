"""The OpenAI-compatible endpoints under /v1/. Each view checks the method, reads the body, calls one service.

Status codes: 200; 400 bad input (malformed JSON, wrong type, out of range, unknown or unsupported parameter,
prompt longer than the context; ``param`` names the culprit); 401 missing or invalid token; 403 banned address;
404 unknown model, or a model that serves another task (code ``model_not_found``); 405 wrong method;
413 body larger than PLAYGROUND_MAX_BODY_BYTES; 429 the model's queue is full (Retry-After); 503 the model could
not be loaded; 504 the request ran past PLAYGROUND_REQUEST_TIMEOUT (code ``timeout``; the engine was stopped).
See playground/api/services.py for the choices made where OpenAI's contract is silent.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from playground.api.auth import api_view
from playground.api.errors import ApiError, error_response
from playground.api.services import (
    embeddings_create,
    embeddings_request_parse,
    json_body_read,
    model_get,
    models_list,
    multipart_read,
    speech_create,
    speech_request_parse,
    text_complete,
    text_events_start,
    text_request_parse,
    transcription_create,
    transcription_request_parse,
)

TIER_HEADER = "X-Service-Tier"


def _method(request: HttpRequest, method: str) -> None:
    if request.method != method:
        raise ApiError(
            405,
            f"{request.method} is not allowed here; use {method}",
            code="method_not_allowed",
            headers={"Allow": method},
        )


def _query_tier(request: HttpRequest) -> str | None:
    return request.GET.get("serviceTier")


@api_view
async def models(request: HttpRequest) -> HttpResponse:
    _method(request, "GET")
    return JsonResponse(models_list())


@api_view
async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    _method(request, "GET")
    return JsonResponse(model_get(model_id=model_id))


def _served(response: HttpResponse, tier: str) -> HttpResponse:
    """Every successful response says which tier (cpu or gpu) served it."""
    response[TIER_HEADER] = tier
    return response


async def _text(request: HttpRequest, kind: str) -> HttpResponse:
    _method(request, "POST")
    body = json_body_read(request=request)
    text_request = text_request_parse(kind=kind, body=body, query_tier=_query_tier(request))
    if not text_request.stream:
        result = await text_complete(request=text_request)
        return _served(JsonResponse(result), result["service_tier"])
    started = await text_events_start(request=text_request)
    stream = StreamingHttpResponse(started.events, content_type="text/event-stream")
    stream["Cache-Control"] = "no-cache"
    stream["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the tokens back
    return _served(stream, started.service_tier)


@api_view
async def chat_completions(request: HttpRequest) -> HttpResponse:
    return await _text(request, "chat")


@api_view
async def completions(request: HttpRequest) -> HttpResponse:
    return await _text(request, "completion")


@api_view
async def embeddings(request: HttpRequest) -> HttpResponse:
    _method(request, "POST")
    body = json_body_read(request=request)
    result = await embeddings_create(request=embeddings_request_parse(body=body, query_tier=_query_tier(request)))
    return _served(JsonResponse(result), result["service_tier"])


async def _audio_text(request: HttpRequest, task: str) -> HttpResponse:
    _method(request, "POST")
    fields, audio = multipart_read(request=request)
    parsed = transcription_request_parse(task=task, fields=fields, audio=audio, query_tier=_query_tier(request))
    rendered = await transcription_create(request=parsed)
    return _served(HttpResponse(rendered.content, content_type=rendered.content_type), rendered.service_tier)


@api_view
async def transcriptions(request: HttpRequest) -> HttpResponse:
    return await _audio_text(request, "transcribe")


@api_view
async def translations(request: HttpRequest) -> HttpResponse:
    return await _audio_text(request, "translate")


@api_view
async def speech(request: HttpRequest) -> HttpResponse:
    _method(request, "POST")
    body = json_body_read(request=request)
    rendered = await speech_create(request=speech_request_parse(body=body, query_tier=_query_tier(request)))
    response = HttpResponse(rendered.content, content_type=rendered.content_type)
    response["Content-Disposition"] = 'attachment; filename="speech.wav"'
    return _served(response, rendered.service_tier)


@csrf_exempt
async def not_found(request: HttpRequest, path: str) -> HttpResponse:
    return error_response(ApiError(404, f"no endpoint /v1/{path}", code="unknown_url"))
