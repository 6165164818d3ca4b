"""A deployed endpoint's routes, /project/p-{project_id}/endpoint/is-{endpoint_id}/v1/...: the /v1 views with the
endpoint's model, defaults and system prompt (services.endpoint_body); the same tokens, limits, queue and ledger."""

from __future__ import annotations

import functools

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from playground.api import openai, openai_views
from playground.api.auth import api_view
from playground.api.http import require_method
from playground.endpoints.models import Endpoint
from playground.endpoints.services import endpoint_body, endpoint_for_call


async def _endpoint(request: HttpRequest, project_id: int, endpoint_id: int, route: str) -> Endpoint:
    return await sync_to_async(endpoint_for_call)(
        token=request.api_token,  # type: ignore[attr-defined]  # set by api_view
        project_id=project_id,
        endpoint_id=endpoint_id,
        query_project=request.GET.get("project_id"),
        route=route,
    )


def _fields(endpoint: Endpoint, fields: dict[str, str]) -> dict[str, str]:
    return {**fields, "model": endpoint.model_id}


@api_view
async def models(request: HttpRequest, project_id: int, endpoint_id: int) -> HttpResponse:
    """What the OpenAI SDK's models.list() sees at this base URL: the endpoint's model."""
    require_method(request, "GET")
    endpoint = await _endpoint(request, project_id, endpoint_id, "models")
    return JsonResponse({"object": "list", "data": [openai.model_get(model_id=endpoint.model_id)]})


@api_view
async def chat_completions(request: HttpRequest, project_id: int, endpoint_id: int) -> HttpResponse:
    endpoint = await _endpoint(request, project_id, endpoint_id, "chat/completions")
    adjust = functools.partial(endpoint_body, endpoint=endpoint, chat=True)
    return await openai_views.text_response(request, chat=True, adjust=lambda body: adjust(body=body))


@api_view
async def completions(request: HttpRequest, project_id: int, endpoint_id: int) -> HttpResponse:
    endpoint = await _endpoint(request, project_id, endpoint_id, "completions")
    adjust = functools.partial(endpoint_body, endpoint=endpoint, chat=False)
    return await openai_views.text_response(request, chat=False, adjust=lambda body: adjust(body=body))


@api_view
async def embeddings(request: HttpRequest, project_id: int, endpoint_id: int) -> HttpResponse:
    endpoint = await _endpoint(request, project_id, endpoint_id, "embeddings")
    return await openai_views.embeddings_response(
        request, adjust=lambda body: endpoint_body(endpoint=endpoint, body=body, chat=False)
    )


@api_view
async def transcriptions(request: HttpRequest, project_id: int, endpoint_id: int) -> HttpResponse:
    endpoint = await _endpoint(request, project_id, endpoint_id, "audio/transcriptions")
    return await openai_views.audio_text_response(
        request, "transcribe", adjust=lambda fields: _fields(endpoint, fields)
    )


@api_view
async def translations(request: HttpRequest, project_id: int, endpoint_id: int) -> HttpResponse:
    endpoint = await _endpoint(request, project_id, endpoint_id, "audio/translations")
    return await openai_views.audio_text_response(request, "translate", adjust=lambda fields: _fields(endpoint, fields))


@api_view
async def speech(request: HttpRequest, project_id: int, endpoint_id: int) -> HttpResponse:
    endpoint = await _endpoint(request, project_id, endpoint_id, "audio/speech")
    return await openai_views.speech_response(request, adjust=lambda body: {**body, "model": endpoint.model_id})
