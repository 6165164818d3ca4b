"""The API's OpenAPI 3.1 document. Its request and response schemas are generated from the contract's models
(playground/contract), the ones that validate and render, and its errors from the one vocabulary (CODES), so
the document, the /api/ page built from it and the server cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from inference import ModelSpec
from inference.audioformat import FORMATS, available
from playground import engines, serving
from playground.contract import ai, openai, tgi
from playground.contract.errors import CODES, Code, Problem

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
SSE = "text/event-stream"


@dataclass(frozen=True)
class ErrorRow:
    status: int
    type: str
    codes: str
    when: str


def error_rows() -> list[ErrorRow]:
    """Every refusal the API makes, one row per status, from the one vocabulary (CODES)."""
    rows: dict[int, list[Code]] = {}
    for code in CODES.values():
        rows.setdefault(code.status, []).append(code)
    return [
        ErrorRow(
            status=status,
            type=", ".join(dict.fromkeys(c.type for c in codes)),
            codes=", ".join(c.code for c in codes),
            when=" ".join(f"{c.code}: {c.when}" for c in codes),
        )
        for status, codes in sorted(rows.items())
    ]


_RESPONSE_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
REF_TEMPLATE = "#/components/schemas/{model}"
AI_PREFIX = "Ai"  # the /ai/ routes' error responses: components/responses/AiBadRequest, ...
# The task(s) whose model ids go into each request schema's model field as examples.
MODEL_TASKS = {
    "ChatCompletionRequest": ("text-to-text",),
    "CompletionRequest": ("text-completion",),
    "EmbeddingRequest": ("embeddings",),
    "SpeechRequest": ("text-to-speech",),
    "TranscriptionRequest": ("speech-to-text",),
    "AiChatRequest": ("text-to-text",),
    "AiGenerateRequest": serving.TEXT_TASKS,
    "AiEmbeddingsRequest": ("embeddings",),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=name)}


def _model_ids(specs: list[ModelSpec], *tasks: str) -> list[str]:
    return [s.id for s in specs if s.task in tasks]


def _contract_schemas(specs: list[ModelSpec]) -> dict[str, Any]:
    """Every request and response schema, generated from the contract's models (the ones that validate)."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((m, "validation") for m in (*openai.REQUESTS, *tgi.REQUESTS, *ai.REQUESTS)),
        *((m, "serialization") for m in (*openai.RESPONSES, *tgi.RESPONSES, *ai.RESPONSES)),
    ]
    _, top = models_json_schema(models, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = top["$defs"]
    for name, tasks in MODEL_TASKS.items():
        ids = _model_ids(specs, *tasks)
        field = schemas[name]["properties"]["model"]
        field["description"] += f" On this server: {', '.join(ids) if ids else 'none configured'}."
        if ids:
            field["examples"] = ids[:3]
    stt = schemas["TranscriptionRequest"]
    audio = {"type": "string", "format": "binary", "description": "The audio."}
    stt["properties"] = {"file": audio, **stt["properties"]}
    stt["required"] = ["file", *stt.get("required", [])]
    speech_format = schemas["SpeechRequest"]["properties"]["response_format"]
    speech_format["anyOf"] = [{"type": "string", "enum": list(available())}, {"type": "null"}]
    return schemas


def _schemas(specs: list[ModelSpec]) -> dict[str, Any]:
    example = Problem(
        "invalid_parameter", "temperature must be a number from 0 to 2 (got 5)", param="temperature"
    ).body()
    return {
        **_contract_schemas(specs),
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "message": {"type": "string", "description": "What went wrong, for a person."},
                        "type": {"type": "string", "enum": sorted({c.type for c in CODES.values()})},
                        "code": {"type": "string", "enum": list(CODES), "description": "Machine-readable reason."},
                        "param": {"type": "string", "description": "The request field at fault, when there is one."},
                        "retry_after": {"type": "integer", "description": "Seconds to wait (429 only)."},
                    },
                    "required": ["message", "type", "code"],
                }
            },
            "required": ["error"],
            "examples": [example],
        },
        "Health": HEALTH,
    }


HEALTH: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"const": "healthy"},
        "device": {
            "type": "object",
            "properties": {
                "device": {"type": "string", "enum": ["cpu", "cuda"]},
                "reason": {"type": "string"},
                "requested": {"type": "string"},
                "engines": {
                    "type": "object",
                    "description": "Per engine family (llama, whisper, piper): its device and why.",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {
                            "device": {"type": "string", "enum": ["cpu", "cuda"]},
                            "reason": {"type": "string"},
                        },
                    },
                },
            },
        },
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "task": {"type": "string"},
                    "state": {"type": "string", "enum": ["not_loaded", "loading", "loaded", "failed"]},
                    "device": {"type": "string"},
                    "note": {"type": "string", "description": "Why a loaded model fell back to the CPU."},
                    "device_reason": {"type": "string", "description": "Why the model runs on its device."},
                    "error": {"type": "string"},
                    "waiting": {"type": "integer"},
                    "weights_present": {"type": "boolean"},
                    "upstreams": {
                        "type": "array",
                        "description": "A remote model's servers (engine openai or tgi); empty for in-process ones.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "url": {"type": "string"},
                                "model": {"type": "string"},
                                "state": {"type": "string", "enum": ["unknown", "healthy", "down"]},
                                "in_flight": {"type": "integer"},
                                "max_concurrency": {"type": "integer"},
                                "latency_ms": {"type": ["number", "null"]},
                                "requests": {"type": "integer"},
                                "failures": {"type": "integer"},
                                "last_error": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}


def _error_responses() -> dict[str, Any]:
    """Every error status as a reusable response, in OpenAI's shape (Error) and, prefixed Ai, in the /ai/ shape."""
    return {**_error_responses_as("Error"), **_error_responses_as("AiError", prefix=AI_PREFIX)}


def _error_responses_as(schema: str, *, prefix: str = "") -> dict[str, Any]:
    error = {JSON: {"schema": _ref(schema)}}
    retry_after = {
        "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 0}}
    }
    descriptions = {row.status: f"{row.when} Type {row.type}; code {row.codes}." for row in error_rows()}
    responses: dict[str, Any] = {}
    for status, name in _RESPONSE_NAMES.items():
        response: dict[str, Any] = {"description": descriptions[status], "content": error}
        if status in (403, 429):
            response["headers"] = retry_after
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}}
        if status == 405:
            response["headers"] = {"Allow": {"schema": {"type": "string"}}}
        responses[prefix + name] = response
    return responses


def _errors(*statuses: int, prefix: str = "") -> dict[str, Any]:
    """References to the error responses (`prefix` AI_PREFIX: in the /ai/ shape)."""
    return {str(s): {"$ref": f"#/components/responses/{prefix}{_RESPONSE_NAMES[s]}"} for s in statuses}


# What each kind of operation can answer besides 200.
AUTH_ERRORS = (400, 401, 403)
MODEL_ERRORS = (*AUTH_ERRORS, 404, 405)
ENGINE_ERRORS = (*MODEL_ERRORS, 413, 429, 500, 503, 504)


def _json_body(schema: str, example: dict[str, Any] | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _ref(schema)}
    if example:
        media["example"] = example
    return {"required": True, "content": {JSON: media}}


def _ok(description: str, content: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": content}
    if headers:
        response["headers"] = headers
    return response


def _sse(description: str, example: str) -> dict[str, Any]:
    """A server-sent event stream, described one event at a time (its `data` is one JSON piece or [DONE])."""
    event = {
        "type": "object",
        "description": description,
        "properties": {
            "data": {"type": "string", "description": "One JSON object as text (or [DONE])."},
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
        "required": ["data"],
    }
    return {"schema": event, "example": example}


SERVICE_TIER_HEADER = {
    "X-Service-Tier": {"description": "Where the request ran: cpu or gpu.", "schema": {"type": "string"}}
}
SERVICE_TIER_QUERY = {
    "name": "serviceTier",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["auto", "default", "gpu", "gpuflex"]},
    "description": "The same as service_tier in the body.",
}


def _first(specs: list[ModelSpec], *tasks: str) -> str:
    ids = _model_ids(specs, *tasks)
    return ids[0] if ids else "MODEL_ID"


def _openai_paths(specs: list[ModelSpec]) -> dict[str, Any]:
    chat_model, completion_model = _first(specs, "text-to-text"), _first(specs, "text-completion")
    text_stream_note = (
        'With "stream": true: one "data: {json}" event per piece, the last with finish_reason, then "data: [DONE]". '
    )
    return {
        "/v1/models": {
            "get": {
                "operationId": "listModels",
                "tags": ["OpenAI"],
                "summary": "List the models this server offers",
                "responses": {
                    "200": _ok("The models.", {JSON: {"schema": _ref("ModelList")}}),
                    **_errors(*AUTH_ERRORS),
                },
            }
        },
        "/v1/models/{model}": {
            "get": {
                "operationId": "getModel",
                "tags": ["OpenAI"],
                "summary": "Describe one model",
                "parameters": [
                    {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {"200": _ok("The model.", {JSON: {"schema": _ref("Model")}}), **_errors(*MODEL_ERRORS)},
            }
        },
        "/v1/chat/completions": {
            "post": {
                "operationId": "createChatCompletion",
                "tags": ["OpenAI"],
                "summary": "Chat with a text-to-text model",
                "description": text_stream_note + "top_k, min_p and repetition_penalty are extensions (openai SDK: "
                "extra_body).",
                "parameters": [SERVICE_TIER_QUERY],
                "requestBody": _json_body(
                    "ChatCompletionRequest",
                    {"model": chat_model, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 64},
                ),
                "responses": {
                    "200": _ok(
                        "The reply, or a stream of chunks.",
                        {
                            JSON: {"schema": _ref("ChatCompletion")},
                            SSE: _sse(
                                "data: <ChatCompletionChunk>\\n\\n per piece, then data: [DONE]",
                                'data: {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": '
                                '{"content": "Hi"}, "finish_reason": null}]}\n\ndata: [DONE]\n\n',
                            ),
                        },
                        SERVICE_TIER_HEADER,
                    ),
                    **_errors(*ENGINE_ERRORS),
                },
            }
        },
        "/v1/completions": {
            "post": {
                "operationId": "createCompletion",
                "tags": ["OpenAI"],
                "summary": "Continue a text with a text-completion model",
                "description": text_stream_note,
                "parameters": [SERVICE_TIER_QUERY],
                "requestBody": _json_body(
                    "CompletionRequest", {"model": completion_model, "prompt": "The sky is", "max_tokens": 32}
                ),
                "responses": {
                    "200": _ok(
                        "The continuation, or a stream of chunks.",
                        {
                            JSON: {"schema": _ref("Completion")},
                            SSE: _sse(
                                "data: <Completion with the new text>\\n\\n per piece, then data: [DONE]",
                                'data: {"object": "text_completion", "choices": [{"index": 0, "text": " blue", '
                                '"finish_reason": null}]}\n\ndata: [DONE]\n\n',
                            ),
                        },
                        SERVICE_TIER_HEADER,
                    ),
                    **_errors(*ENGINE_ERRORS),
                },
            }
        },
        "/v1/embeddings": {
            "post": {
                "operationId": "createEmbedding",
                "tags": ["OpenAI"],
                "summary": "Embed texts as L2-normalised vectors",
                "parameters": [SERVICE_TIER_QUERY],
                "requestBody": _json_body(
                    "EmbeddingRequest", {"model": _first(specs, "embeddings"), "input": ["first text", "second"]}
                ),
                "responses": {
                    "200": _ok("One vector per input.", {JSON: {"schema": _ref("EmbeddingList")}}, SERVICE_TIER_HEADER),
                    **_errors(*ENGINE_ERRORS),
                },
            }
        },
        "/v1/audio/transcriptions": _stt("createTranscription", "Transcribe speech into text", specs),
        "/v1/audio/translations": _stt("createTranslation", "Translate speech into English text", specs),
        "/v1/audio/speech": {
            "post": {
                "operationId": "createSpeech",
                "tags": ["OpenAI"],
                "summary": "Speak a text",
                "description": f"The audio in response_format: {', '.join(available())} (default wav).",
                "parameters": [SERVICE_TIER_QUERY],
                "requestBody": _json_body(
                    "SpeechRequest", {"model": _first(specs, "text-to-speech"), "input": "Hello there.", "speed": 1.0}
                ),
                "responses": {
                    "200": _ok(
                        "The speech, in the format asked for.",
                        {
                            FORMATS[name].content_type: {"schema": {"type": "string", "format": "binary"}}
                            for name in available()
                        },
                        SERVICE_TIER_HEADER,
                    ),
                    **_errors(*ENGINE_ERRORS),
                },
            }
        },
    }


def _stt(operation_id: str, summary: str, specs: list[ModelSpec]) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "tags": ["OpenAI"],
            "summary": summary,
            "parameters": [SERVICE_TIER_QUERY],
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": _ref("TranscriptionRequest")}},
            },
            "responses": {
                "200": _ok(
                    "json/verbose_json: an object; text, srt, vtt: plain text.",
                    {JSON: {"schema": _ref("Transcription")}, "text/plain": {"schema": {"type": "string"}}},
                    SERVICE_TIER_HEADER,
                ),
                **_errors(*ENGINE_ERRORS),
            },
        }
    }


def _tgi_operation(operation_id: str, summary: str, *, stream: bool, text_ids: list[str] | None) -> dict[str, Any]:
    """A TGI generate route; text_ids given: the per-model route under /models/{model_id}/."""
    per_model = text_ids is not None
    events = {
        SSE: _sse(
            "data: <StreamResponse>\\n\\n per piece; the last carries generated_text and details.",
            'data: {"token": {"id": 0, "text": "and", "logprob": null, "special": false}, '
            '"generated_text": null, "details": null}\n\n'
            'data: {"token": {"id": 1, "text": " then", "logprob": null, "special": false}, '
            '"generated_text": "and then", "details": {"finish_reason": "length", "generated_tokens": 2, '
            '"seed": 42, "input_length": 4}}\n\n',
        )
    }
    if stream:
        ok = _ok("Server-sent events in TGI's token format.", events)
    else:  # "stream": true in the body streams here too, as TGI's compatibility route does
        ok = _ok(
            "The generated text and its details; with stream: true, server-sent events as /generate_stream sends.",
            {JSON: {"schema": _ref("GenerateResponse")}, **events},
        )
    which = "the model in the path" if per_model else "the default text model (PLAYGROUND_DEFAULT_TEXT_MODEL)"
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": ["TGI"],
        "summary": summary,
        "description": f"Hugging Face Text Generation Inference's route, serving {which}.",
        "requestBody": _json_body(
            "GenerateRequest", {"inputs": "The sky is", "parameters": {"max_new_tokens": 20, "details": True}}
        ),
        "responses": {"200": ok, **_errors(*ENGINE_ERRORS)},
    }
    if per_model:
        operation["parameters"] = [_model_path_parameter(text_ids or [])]
    return {"post": operation}


def _model_path_parameter(text_ids: list[str]) -> dict[str, Any]:
    listed = ", ".join(text_ids) or "none configured"
    return {
        "name": "model_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": f"A text model (text-to-text or text-completion). On this server: {listed}.",
    }


def _tgi_paths(specs: list[ModelSpec]) -> dict[str, Any]:
    text_ids = _model_ids(specs, *serving.TEXT_TASKS)
    info_ok = {"200": _ok("The model and its limits.", {JSON: {"schema": _ref("Info")}}), **_errors(*MODEL_ERRORS)}
    compat = _tgi_operation("generateCompat", "TGI's compatibility route (TGI)", stream=False, text_ids=None)
    compat["post"]["description"] = (
        "POST / as TGI serves it, for the default text model: what huggingface_hub's InferenceClient(base_url) "
        "and the text-generation client post to. The answer is a one-element list holding /generate's object, as "
        "TGI's compatibility route answers; streamed when the body says stream: true. (GET / is the catalog page.)"
    )
    listed = {"type": "array", "items": _ref("GenerateResponse"), "minItems": 1, "maxItems": 1}
    compat["post"]["responses"]["200"]["content"][JSON] = {"schema": listed}
    return {
        "/": compat,
        "/generate": _tgi_operation("generate", "Generate text (TGI)", stream=False, text_ids=None),
        "/generate_stream": _tgi_operation(
            "generateStream", "Generate text as a stream (TGI)", stream=True, text_ids=None
        ),
        "/info": {
            "get": {
                "operationId": "info",
                "tags": ["TGI"],
                "summary": "The default text model and its limits (TGI)",
                "responses": info_ok,
            }
        },
        "/models/{model_id}/generate": _tgi_operation(
            "generateWithModel", "Generate text with a chosen model (TGI)", stream=False, text_ids=text_ids
        ),
        "/models/{model_id}/generate_stream": _tgi_operation(
            "generateStreamWithModel",
            "Generate text with a chosen model as a stream (TGI)",
            stream=True,
            text_ids=text_ids,
        ),
        "/models/{model_id}/info": {
            "get": {
                "operationId": "infoForModel",
                "tags": ["TGI"],
                "summary": "A text model and its limits (TGI)",
                "parameters": [_model_path_parameter(text_ids)],
                "responses": info_ok,
            }
        },
    }


def _ai_paths(specs: list[ModelSpec]) -> dict[str, Any]:
    """The unified-inference dialect's routes; every error in its own shape (AiError)."""
    chat_model = _first(specs, "text-to-text")
    errors = _errors(*ENGINE_ERRORS, prefix=AI_PREFIX)

    def operation(operation_id: str, summary: str, request: str, example: dict[str, Any], ok: Any) -> dict[str, Any]:
        return {
            "post": {
                "operationId": operation_id,
                "tags": ["Unified"],
                "summary": summary,
                "requestBody": _json_body(request, example),
                "responses": {"200": ok, **errors},
            }
        }

    chat_events = _sse(
        "data: <AiChatChunk>\\n\\n per piece, the last with finish_reason and usage, then data: [DONE]; a tool call "
        "comes whole, once complete, as a tool_calls delta; an error after the stream started is one AiError event "
        "before [DONE].",
        'data: {"delta": {"content": "Hi"}}\n\ndata: {"delta": {}, "finish_reason": "stop", "usage": '
        '{"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}\n\ndata: [DONE]\n\n',
    )
    embeddings = {"oneOf": [_ref("AiEmbedding"), _ref("AiEmbeddings")]}
    return {
        "/ai/models": {
            "get": {
                "operationId": "aiListModels",
                "tags": ["Unified"],
                "summary": "List the models the /ai/ routes serve, with their capabilities",
                "responses": {
                    "200": _ok("The models.", {JSON: {"schema": _ref("AiModelList")}}),
                    **_errors(*AUTH_ERRORS, 405, prefix=AI_PREFIX),
                },
            }
        },
        "/ai/chat": operation(
            "aiChat",
            "Chat with a text-to-text model (unified), with tools",
            "AiChatRequest",
            {"model": chat_model, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 64},
            _ok("The reply, or a stream of deltas.", {JSON: {"schema": _ref("AiChatResponse")}, SSE: chat_events}),
        ),
        "/ai/generate": operation(
            "aiGenerate",
            "Generate text from a prompt (unified)",
            "AiGenerateRequest",
            {"model": _first(specs, "text-completion", "text-to-text"), "prompt": "The sky is", "max_tokens": 32},
            _ok("The generated text.", {JSON: {"schema": _ref("AiGenerateResponse")}}),
        ),
        "/ai/embeddings": operation(
            "aiEmbeddings",
            "Embed a text or a list of texts (unified)",
            "AiEmbeddingsRequest",
            {"model": _first(specs, "embeddings"), "input": "a text"},
            _ok("A string input: embedding; a list: embeddings.", {JSON: {"schema": embeddings}}),
        ),
    }


def _open_paths() -> dict[str, Any]:
    return {
        "/health": {
            "get": {
                "operationId": "health",
                "tags": ["Service"],
                "summary": "Liveness, the device in use and every model's state (no token needed)",
                "security": [],
                "responses": {"200": _ok("The server is up.", {JSON: {"schema": _ref("Health")}})},
            }
        },
        "/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "tags": ["Service"],
                "summary": "This OpenAPI document (no token needed)",
                "security": [],
                "responses": {"200": _ok("OpenAPI 3.1.", {JSON: {"schema": {"type": "object"}}})},
            }
        },
    }


def openapi_document(*, server_url: str = "") -> dict[str, Any]:
    """The whole API as an OpenAPI 3.1 dict; model ids and limits come from this server's catalog."""
    specs = list(engines.get_pool().specs.values())
    auth = (
        f"Send Authorization: Bearer <token> (create tokens at /tokens/). "
        f"{settings.PLAYGROUND_AUTH_FAILURE_LIMIT} wrong tokens from one address within "
        f"{settings.PLAYGROUND_AUTH_FAILURE_WINDOW} s ban it for {settings.PLAYGROUND_AUTH_BAN_SECONDS} s (403)."
    )
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "GenAI Playground API",
            "version": tgi.VERSION,
            "description": "OpenAI-compatible /v1 endpoints, Hugging Face TGI-compatible endpoints and the "
            "unified-inference /ai/ endpoints for the models this server runs in-process (llama.cpp, "
            "faster-whisper, Piper). " + auth,
        },
        "servers": [{"url": server_url or "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "OpenAI", "description": "OpenAI's /v1 dialect: the official openai SDKs work with base_url."},
            {"name": "TGI", "description": "Hugging Face Text Generation Inference's routes."},
            {
                "name": "Unified",
                "description": "The unified-inference dialect under /ai/: chat (with tools), generate, embeddings, "
                'models; its errors are {"error": {"code", "message", "param"?, "retry_after"?, "status"}}.',
            },
            {"name": "Service", "description": "Open endpoints: health and this document."},
        ],
        "paths": {**_openai_paths(specs), **_tgi_paths(specs), **_ai_paths(specs), **_open_paths()},
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": auth},
            },
            "schemas": _schemas(specs),
            "responses": _error_responses(),
        },
    }
    return document


# -- for the readable page ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointRow:
    method: str
    path: str
    summary: str
    parameters: tuple[str, ...]  # "name*" for required ones
    content_types: tuple[str, ...]  # of the successful response
    authenticated: bool
    tag: str


def _schema(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    target: Any = document
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return target


def endpoint_rows(document: dict[str, Any]) -> list[EndpointRow]:
    """One row per operation: method, path, summary, parameter names (required ones marked with *)."""
    rows = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            names = [
                f"{p['name']}{'*' if p.get('required') else ''} ({p['in']})" for p in operation.get("parameters", [])
            ]
            body = operation.get("requestBody", {}).get("content", {})
            for media in body.values():
                schema = _schema(document, media["schema"])
                required = set(schema.get("required", ()))
                names += [f"{name}{'*' if name in required else ''}" for name in schema.get("properties", {})]
                if media["schema"] == _ref("GenerateRequest"):  # TGI's routes
                    params = _schema(document, _ref("GenerateParameters"))
                    names += [f"parameters.{name}" for name in params["properties"]]
            ok = operation["responses"].get("200", {})
            rows.append(
                EndpointRow(
                    method=method.upper(),
                    path=path,
                    summary=operation.get("summary", ""),
                    parameters=tuple(names),
                    content_types=tuple(ok.get("content", {})),
                    authenticated=operation.get("security", document["security"]) != [],
                    tag=operation.get("tags", [""])[0],
                )
            )
    return rows
