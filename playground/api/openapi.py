"""The API's OpenAPI 3.1 document, built from the catalog and the same ranges the server enforces.

One dict serves GET /v1/openapi.json and the readable page at /api/ (its endpoints and errors tables), so the two
cannot disagree. Sampling ranges come from SamplingParams' own checks, field texts from the card's API tab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from inference import ModelSpec
from playground import engines
from playground.api import tgi
from playground.catalog.schemas import DESCRIPTIONS

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
SSE = "text/event-stream"


@dataclass(frozen=True)
class ErrorRow:
    status: int
    type: str
    codes: str
    when: str


# Every refusal the API makes, in the order a request meets them.
ERRORS: tuple[ErrorRow, ...] = (
    ErrorRow(
        403,
        "permission_error",
        "banned",
        "The client address is banned after too many failed authentications; Retry-After gives the seconds left.",
    ),
    ErrorRow(
        401,
        "authentication_error",
        "invalid_api_key",
        "No Authorization: Bearer header, or the token is unknown, revoked or expired.",
    ),
    ErrorRow(
        405, "invalid_request_error", "method_not_allowed", "Wrong HTTP method; the Allow header names the right one."
    ),
    ErrorRow(413, "invalid_request_error", "request_too_large", "The body is larger than PLAYGROUND_MAX_BODY_BYTES."),
    ErrorRow(
        400,
        "invalid_request_error",
        "invalid_json, unknown_parameter, unsupported_parameter, invalid_type, invalid_parameter, "
        "missing_required_parameter, image_input_not_supported, context_length_exceeded, ...",
        "Something in the request is wrong; param names the field (e.g. temperature, parameters.top_p, inputs).",
    ),
    ErrorRow(
        404,
        "invalid_request_error",
        "model_not_found, unknown_url",
        "The model does not exist, or it serves another task than the endpoint (e.g. an embeddings model on "
        "/v1/chat/completions or /generate).",
    ),
    ErrorRow(
        429,
        "rate_limit_error",
        "queue_full",
        "The model's waiting line is full (PLAYGROUND_MAX_QUEUE); retry after Retry-After seconds "
        "(also retry_after in the error object).",
    ),
    ErrorRow(503, "server_error", "model_load_failed", "The model's weights could not be loaded."),
    ErrorRow(
        504,
        "timeout_error",
        "timeout",
        "The request ran longer than PLAYGROUND_REQUEST_TIMEOUT seconds (queue wait included); the engine was "
        "stopped. A stream that has already started ends with an error event instead.",
    ),
)

_RESPONSE_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _model_ids(specs: list[ModelSpec], *tasks: str) -> list[str]:
    return [s.id for s in specs if s.task in tasks]


def _model_field(specs: list[ModelSpec], *tasks: str) -> dict[str, Any]:
    ids = _model_ids(specs, *tasks)
    listed = ", ".join(ids) if ids else "none configured"
    field: dict[str, Any] = {"type": "string", "description": f"The model id. On this server: {listed}."}
    if ids:
        field["examples"] = ids[:3]
    return field


def _sampling_properties(*, max_tokens_name: str = "max_tokens") -> dict[str, Any]:
    """The sampling knobs with SamplingParams' ranges (the server refuses values outside them, never clamps)."""
    return {
        "temperature": {
            "type": "number",
            "minimum": 0,
            "maximum": 2,
            "description": DESCRIPTIONS["temperature"] + " Left out: the model's catalog default.",
        },
        "top_p": {"type": "number", "minimum": 0, "maximum": 1, "description": DESCRIPTIONS["top_p"]},
        "top_k": {"type": "integer", "minimum": 0, "description": DESCRIPTIONS["top_k"]},
        "min_p": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "Drop tokens less likely than min_p times the most likely one. Extension to the OpenAI API.",
        },
        max_tokens_name: {
            "type": "integer",
            "minimum": 1,
            "description": DESCRIPTIONS["max_tokens"] + " At most the model's context (see GET /v1/models).",
        },
        "presence_penalty": {
            "type": "number",
            "minimum": -2,
            "maximum": 2,
            "description": DESCRIPTIONS["presence_penalty"],
        },
        "frequency_penalty": {
            "type": "number",
            "minimum": -2,
            "maximum": 2,
            "description": DESCRIPTIONS["frequency_penalty"],
        },
        "repetition_penalty": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 2,
            "description": DESCRIPTIONS["repetition_penalty"],
        },
        "seed": {
            "type": "integer",
            "minimum": 0,
            "maximum": 2**32 - 1,
            "description": "The same seed and parameters give the same output. Left out: random.",
        },
        "stop": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4},
            ],
            "description": "Up to 4 sequences; generation stops before them (they are not returned).",
        },
    }


def _openai_text_common() -> dict[str, Any]:
    return {
        **_sampling_properties(),
        "stream": {"type": "boolean", "default": False, "description": "true: server-sent events (text/event-stream)."},
        "stream_options": {
            "type": "object",
            "properties": {
                "include_usage": {
                    "type": "boolean",
                    "description": "Send one more chunk before [DONE] with usage and empty choices.",
                }
            },
            "additionalProperties": False,
        },
        "service_tier": {
            "type": "string",
            "enum": ["auto", "default", "gpu", "gpuflex"],
            "description": "auto/default run where the model runs; gpu/gpuflex insist on the GPU (400 when this "
            "server has none). Also accepted as the query parameter ?serviceTier=. The response says where it "
            "ran (service_tier and the X-Service-Tier header).",
        },
        "user": {"type": "string", "description": "Accepted and ignored."},
        "n": {"type": "integer", "enum": [1], "description": "Only 1."},
        "logprobs": {"type": "boolean", "enum": [False], "description": "Only false."},
    }


def _usage_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
        },
        "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
    }


def _schemas(specs: list[ModelSpec]) -> dict[str, Any]:
    finish = {"type": ["string", "null"], "enum": ["stop", "length", "cancelled", None]}
    chat_message = {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
            "content": {"type": "string"},
        },
        "required": ["role", "content"],
    }
    text_head = {
        "id": {"type": "string"},
        "object": {"type": "string"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "service_tier": {"type": "string", "enum": ["cpu", "gpu"], "description": "Where the request ran."},
    }
    tgi_token = {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "description": "The piece's position in the reply (not a vocabulary id)."},
            "text": {"type": "string"},
            "logprob": {"type": ["number", "null"], "description": "Always null: the engine reports no logprobs."},
            "special": {"type": "boolean", "description": "true only for the empty end-of-sequence piece."},
        },
        "required": ["id", "text", "logprob", "special"],
    }
    tgi_finish = {"type": "string", "enum": ["length", "eos_token", "stop_sequence"]}
    return {
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "message": {"type": "string", "description": "What went wrong, for a person."},
                        "type": {
                            "type": "string",
                            "enum": sorted({row.type for row in ERRORS}),
                        },
                        "code": {"type": ["string", "null"], "description": "Machine-readable reason."},
                        "param": {"type": "string", "description": "The request field at fault, when there is one."},
                        "retry_after": {"type": "integer", "description": "Seconds to wait (429 only)."},
                    },
                    "required": ["message", "type", "code"],
                }
            },
            "required": ["error"],
            "examples": [
                {
                    "error": {
                        "message": "temperature must be between 0 and 2",
                        "type": "invalid_request_error",
                        "code": "invalid_parameter",
                        "param": "temperature",
                    }
                }
            ],
        },
        "Usage": _usage_schema(),
        "Model": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "model"},
                "created": {"type": "integer"},
                "owned_by": {"type": "string"},
                "name": {"type": "string"},
                "task": {
                    "type": "string",
                    "enum": ["text-to-text", "text-completion", "embeddings", "speech-to-text", "text-to-speech"],
                },
                "capabilities": {"type": "array", "items": {"type": "string"}},
                "context_length": {"type": ["integer", "null"], "description": "Tokens this server serves."},
            },
            "required": ["id", "object", "created", "owned_by"],
        },
        "ModelList": {
            "type": "object",
            "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _ref("Model")}},
            "required": ["object", "data"],
        },
        "ChatMessage": chat_message,
        "ChatCompletionRequest": {
            "type": "object",
            "properties": {
                "model": _model_field(specs, "text-to-text"),
                "messages": {
                    "type": "array",
                    "items": _ref("ChatMessage"),
                    "minItems": 1,
                    "description": "The conversation so far; must fit in the model's context with max_tokens.",
                },
                **_openai_text_common(),
                "max_completion_tokens": {"type": "integer", "minimum": 1, "description": "Same as max_tokens."},
            },
            "required": ["model", "messages"],
            "additionalProperties": False,
        },
        "ChatCompletion": {
            "type": "object",
            "properties": {
                **text_head,
                "choices": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "message": _ref("ChatMessage"),
                            "finish_reason": finish,
                        },
                    },
                },
                "usage": _ref("Usage"),
            },
        },
        "ChatCompletionChunk": {
            "type": "object",
            "description": "One server-sent event of a streamed chat completion.",
            "properties": {
                **text_head,
                "choices": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "delta": {
                                "type": "object",
                                "properties": {"role": {"type": "string"}, "content": {"type": "string"}},
                            },
                            "finish_reason": finish,
                        },
                    },
                },
                "usage": {"oneOf": [_ref("Usage"), {"type": "null"}]},
            },
        },
        "CompletionRequest": {
            "type": "object",
            "properties": {
                "model": _model_field(specs, "text-completion"),
                "prompt": {"type": "string", "minLength": 1, "description": "The text to continue (no template)."},
                **_openai_text_common(),
            },
            "required": ["model", "prompt"],
            "additionalProperties": False,
        },
        "Completion": {
            "type": "object",
            "description": "The whole reply, or (streamed) one server-sent event with the new text.",
            "properties": {
                **text_head,
                "choices": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "text": {"type": "string"},
                            "finish_reason": finish,
                        },
                    },
                },
                "usage": _ref("Usage"),
            },
        },
        "EmbeddingRequest": {
            "type": "object",
            "properties": {
                "model": _model_field(specs, "embeddings"),
                "input": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                    ],
                    "description": "The texts to embed; one vector per text, in order; each within the model's "
                    "context.",
                },
                "encoding_format": {"type": "string", "enum": ["float", "base64"], "default": "float"},
                "dimensions": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Only the model's own dimension count.",
                },
                "user": {"type": "string"},
                "service_tier": {"type": "string", "enum": ["auto", "default", "gpu", "gpuflex"]},
            },
            "required": ["model", "input"],
            "additionalProperties": False,
        },
        "EmbeddingList": {
            "type": "object",
            "properties": {
                "object": {"const": "list"},
                "model": {"type": "string"},
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "object": {"const": "embedding"},
                            "index": {"type": "integer"},
                            "embedding": {
                                "oneOf": [
                                    {"type": "array", "items": {"type": "number"}},
                                    {"type": "string", "description": "base64 of little-endian float32"},
                                ]
                            },
                        },
                    },
                },
                "usage": {
                    "type": "object",
                    "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}},
                },
            },
        },
        "TranscriptionRequest": {
            "type": "object",
            "properties": {
                "file": {
                    "type": "string",
                    "format": "binary",
                    "description": "The audio (WAV, MP3, OGG, FLAC, ...); at most PLAYGROUND_MAX_BODY_BYTES.",
                },
                "model": _model_field(specs, "speech-to-text"),
                "language": {
                    "type": "string",
                    "description": "ISO-639-1 code of the spoken language; left out, it is detected.",
                },
                "prompt": {"type": "string", "description": "Refused when set: the engine has no prompt conditioning."},
                "temperature": {"type": "number", "enum": [0], "description": "Only 0 (greedy decoding)."},
                "response_format": {
                    "type": "string",
                    "enum": ["json", "text", "srt", "vtt", "verbose_json"],
                    "default": "json",
                },
            },
            "required": ["file", "model"],
        },
        "Transcription": {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "language": {"type": "string", "description": "verbose_json only"},
                "duration": {"type": "number", "description": "verbose_json only: seconds of audio"},
                "segments": {
                    "type": "array",
                    "description": "verbose_json only",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "start": {"type": "number"},
                            "end": {"type": "number"},
                            "text": {"type": "string"},
                        },
                    },
                },
            },
            "required": ["text"],
        },
        "SpeechRequest": {
            "type": "object",
            "properties": {
                "model": _model_field(specs, "text-to-speech"),
                "input": {"type": "string", "minLength": 1, "maxLength": 4096, "description": "The text to speak."},
                "voice": {
                    "type": "string",
                    "description": '"default", the model id, or one of OpenAI\'s voice names (alloy, ash, ballad, '
                    "cedar, coral, echo, fable, marin, nova, onyx, sage, shimmer, verse), each spoken with the "
                    "model's one voice.",
                },
                "speed": {"type": "number", "minimum": 0.25, "maximum": 4, "default": 1},
                "response_format": {"type": "string", "enum": ["wav"], "default": "wav"},
                "service_tier": {"type": "string", "enum": ["auto", "default", "gpu", "gpuflex"]},
            },
            "required": ["model", "input"],
            "additionalProperties": False,
        },
        "GenerateParameters": {
            "type": "object",
            "description": "TGI's parameters. Also accepted at their neutral value only (TGI clients send them): "
            + ", ".join(
                f"{name} ({' or '.join(str(v).lower() for v in values)})"
                for name, values in tgi.NEUTRAL_PARAMETERS.items()
            )
            + ". Any other key is refused with a 400 naming it.",
            "properties": {
                "max_new_tokens": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "The most tokens to generate (our max_tokens); left out: the model's default.",
                },
                "temperature": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 2,
                    "description": DESCRIPTIONS["temperature"],
                },
                "top_p": {"type": "number", "minimum": 0, "maximum": 1, "description": DESCRIPTIONS["top_p"]},
                "top_k": {"type": "integer", "minimum": 0, "description": DESCRIPTIONS["top_k"]},
                "repetition_penalty": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 2,
                    "description": DESCRIPTIONS["repetition_penalty"],
                },
                "frequency_penalty": {
                    "type": "number",
                    "minimum": -2,
                    "maximum": 2,
                    "description": DESCRIPTIONS["frequency_penalty"],
                },
                "stop": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "maxItems": tgi.MAX_STOP_SEQUENCES,
                    "description": "Stop when one of these appears; like TGI, generated_text ends with it.",
                },
                "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
                "do_sample": {
                    "type": "boolean",
                    "description": "false: greedy (temperature 0) whatever else is set. true: sample with the given "
                    "temperature or the model's default. Left out: sample only when temperature, top_p or top_k "
                    "is given (as TGI does), else greedy.",
                },
                "details": {"type": "boolean", "default": False, "description": "Add details to the answer."},
            },
        },
        "GenerateRequest": {
            "type": "object",
            "properties": {
                "inputs": {
                    "type": "string",
                    "minLength": 1,
                    "description": "The text. A chat model gets it as one user message through its chat template; "
                    "a completion model continues it as is. Images (<image>...</image> or ![](...)) are refused: "
                    "no model here has vision.",
                },
                "parameters": _ref("GenerateParameters"),
                "stream": {
                    "type": "boolean",
                    "description": "true on /generate answers as /generate_stream does (TGI's compatibility route).",
                },
            },
            "required": ["inputs"],
            "additionalProperties": False,
        },
        "Token": tgi_token,
        "GenerateResponse": {
            "type": "object",
            "properties": {
                "generated_text": {"type": "string"},
                "details": {
                    "type": "object",
                    "description": "Always; prefill and tokens only with parameters.details: true.",
                    "properties": {
                        "finish_reason": tgi_finish,
                        "generated_tokens": {"type": "integer"},
                        "seed": {"type": ["integer", "null"], "description": "The seed used; null when greedy."},
                        "prefill": {"type": "array", "items": {}, "description": "Always empty."},
                        "tokens": {"type": "array", "items": _ref("Token")},
                    },
                    "required": ["finish_reason", "generated_tokens", "seed"],
                },
            },
            "required": ["generated_text", "details"],
        },
        "StreamResponse": {
            "type": "object",
            "description": "One server-sent event of /generate_stream; generated_text and details only on the last. "
            'A failure after the stream started arrives as {"error": "...", "error_type": "..."} instead.',
            "properties": {
                "token": _ref("Token"),
                "generated_text": {"type": ["string", "null"]},
                "details": {
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "properties": {
                                "finish_reason": tgi_finish,
                                "generated_tokens": {"type": "integer"},
                                "seed": {"type": ["integer", "null"]},
                                "input_length": {"type": "integer", "description": "Prompt tokens."},
                            },
                        },
                    ]
                },
            },
            "required": ["token", "generated_text", "details"],
        },
        "Info": {
            "type": "object",
            "properties": {
                "model_id": {"type": "string"},
                "model_dtype": {"type": ["string", "null"], "description": "The GGUF quantization, e.g. Q4_K_M."},
                "quantization": {"type": ["string", "null"]},
                "model_device_type": {"type": "string", "enum": ["cpu", "cuda"]},
                "model_pipeline_tag": {"const": "text-generation"},
                "task": {"type": "string"},
                "max_input_tokens": {"type": "integer"},
                "max_total_tokens": {"type": "integer", "description": "The context served (n_ctx)."},
                "max_stop_sequences": {"type": "integer"},
                "max_concurrent_requests": {"type": "integer"},
                "max_best_of": {"type": "integer"},
                "version": {"type": "string"},
                "router": {"type": "string"},
            },
            "required": ["model_id", "max_input_tokens", "max_total_tokens", "version"],
        },
        "Health": {
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
                        },
                    },
                },
            },
        },
    }


def _error_responses() -> dict[str, Any]:
    error = {JSON: {"schema": _ref("Error")}}
    retry_after = {
        "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 0}}
    }
    descriptions = {row.status: f"{row.when} type {row.type}; code {row.codes}." for row in ERRORS}
    responses: dict[str, Any] = {}
    for status, name in _RESPONSE_NAMES.items():
        response: dict[str, Any] = {"description": descriptions[status], "content": error}
        if status in (403, 429):
            response["headers"] = retry_after
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}}
        if status == 405:
            response["headers"] = {"Allow": {"schema": {"type": "string"}}}
        responses[name] = response
    return responses


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{_RESPONSE_NAMES[s]}"} for s in statuses}


# What each kind of operation can answer besides 200.
AUTH_ERRORS = (400, 401, 403)
MODEL_ERRORS = (*AUTH_ERRORS, 404, 405)
ENGINE_ERRORS = (*MODEL_ERRORS, 413, 429, 503, 504)


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
                "summary": "Speak a text (WAV)",
                "parameters": [SERVICE_TIER_QUERY],
                "requestBody": _json_body(
                    "SpeechRequest", {"model": _first(specs, "text-to-speech"), "input": "Hello there.", "speed": 1.0}
                ),
                "responses": {
                    "200": _ok(
                        "16-bit mono WAV.",
                        {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
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
    text_ids = _model_ids(specs, *tgi.TEXT_TASKS)
    info_ok = {"200": _ok("The model and its limits.", {JSON: {"schema": _ref("Info")}}), **_errors(*MODEL_ERRORS)}
    compat = _tgi_operation("generateCompat", "TGI's compatibility route (TGI)", stream=False, text_ids=None)
    compat["post"]["description"] = (
        "POST / as TGI serves it, for the default text model: what huggingface_hub's InferenceClient(base_url) "
        "and other TGI clients post to; streamed when the body says stream: true. (GET / is the catalog page.)"
    )
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
        f"{settings.PLAYGROUND_AUTH_FAILURE_LIMIT} failed authentications from one address within "
        f"{settings.PLAYGROUND_AUTH_FAILURE_WINDOW} s ban it for {settings.PLAYGROUND_AUTH_BAN_SECONDS} s (403)."
    )
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "GenAI Playground API",
            "version": tgi.VERSION,
            "description": "OpenAI-compatible /v1 endpoints and Hugging Face TGI-compatible endpoints for the "
            "models this server runs in-process (llama.cpp, faster-whisper, Piper). " + auth,
        },
        "servers": [{"url": server_url or "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "OpenAI", "description": "OpenAI's /v1 dialect: the official openai SDKs work with base_url."},
            {"name": "TGI", "description": "Hugging Face Text Generation Inference's routes."},
            {"name": "Service", "description": "Open endpoints: health and this document."},
        ],
        "paths": {**_openai_paths(specs), **_tgi_paths(specs), **_open_paths()},
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
                if path.endswith(("generate", "generate_stream")):
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
