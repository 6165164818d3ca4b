"""The API's documentation: the OpenAPI document as JSON, and the same document as a readable page."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from playground import engines
from playground.api import openapi, tgi


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@require_GET
def openapi_json(request: HttpRequest) -> JsonResponse:
    """Open to everyone (no token), like /health: clients and code generators read it before they have one."""
    document = openapi.openapi_document(server_url=_base_url(request))
    return JsonResponse(document, json_dumps_params={"indent": 2})


def _examples(*, base: str, chat_model: str, default_model: str) -> dict[str, str]:
    chat_body = json.dumps({"model": chat_model, "messages": [{"role": "user", "content": "Say hello."}]})
    generate_body = json.dumps({"inputs": "The sky is", "parameters": {"max_new_tokens": 20, "details": True}})
    return {
        "curl_chat": (
            f"curl {base}/v1/chat/completions \\\n"
            '  -H "Authorization: Bearer $PLAYGROUND_TOKEN" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            f"  -d '{chat_body}'"
        ),
        "openai_sdk": (
            "from openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{base}/v1", api_key=PLAYGROUND_TOKEN)\n'
            "reply = client.chat.completions.create(\n"
            f'    model="{chat_model}",\n'
            '    messages=[{"role": "user", "content": "Say hello."}],\n'
            "    max_tokens=64,\n"
            '    extra_body={"top_k": 40},  # extensions go in extra_body\n'
            ")\n"
            "print(reply.choices[0].message.content)\n\n"
            "for chunk in client.chat.completions.create(\n"
            f'    model="{chat_model}", messages=[{{"role": "user", "content": "Count to 5."}}], stream=True\n'
            "):\n"
            '    print(chunk.choices[0].delta.content or "", end="", flush=True)'
        ),
        "curl_generate": (
            f"curl {base}/generate \\\n"
            '  -H "Authorization: Bearer $PLAYGROUND_TOKEN" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            f"  -d '{generate_body}'"
        ),
        "curl_generate_stream": (
            f"curl -N {base}/models/{default_model}/generate_stream \\\n"
            '  -H "Authorization: Bearer $PLAYGROUND_TOKEN" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            """  -d '{"inputs": "Once upon a time", "parameters": {"max_new_tokens": 30}}'"""
        ),
    }


@require_GET
def api_docs(request: HttpRequest) -> HttpResponse:
    base = _base_url(request)
    document = openapi.openapi_document(server_url=base)
    specs = list(engines.get_pool().specs.values())
    chat_model = next((s.id for s in specs if s.task == "text-to-text"), "MODEL_ID")
    rows = openapi.endpoint_rows(document)
    context = {
        "base_url": base,
        "document": document,
        "groups": [(tag, [row for row in rows if row.tag == tag]) for tag in ("OpenAI", "TGI", "Unified", "Service")],
        "errors": openapi.error_rows(),
        "error_example": json.dumps(document["components"]["schemas"]["Error"]["examples"][0], indent=2),
        "auth_limit": settings.PLAYGROUND_AUTH_FAILURE_LIMIT,
        "auth_window": settings.PLAYGROUND_AUTH_FAILURE_WINDOW,
        "auth_ban": settings.PLAYGROUND_AUTH_BAN_SECONDS,
        "request_timeout": settings.PLAYGROUND_REQUEST_TIMEOUT,
        "max_body_bytes": settings.PLAYGROUND_MAX_BODY_BYTES,
        "max_json_bytes": settings.PLAYGROUND_MAX_JSON_BYTES,
        "max_queue": settings.PLAYGROUND_MAX_QUEUE,
        "default_text_model": settings.PLAYGROUND_DEFAULT_TEXT_MODEL,
        "models": [(s.id, s.task) for s in specs],
        "stop_sequences": tgi.MAX_STOP_SEQUENCES,
        "examples": _examples(base=base, chat_model=chat_model, default_model=settings.PLAYGROUND_DEFAULT_TEXT_MODEL),
    }
    return render(request, "api/docs.html", context)
