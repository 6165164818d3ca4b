"""The API tab: the HTTP endpoint a model is served on, its request fields with their limits, and examples.

The fields are generated from the request's contract model (playground/contract), the one that validates it, with
this model's defaults and context added; so the card cannot drift from what the server accepts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from inference import ModelSpec
from inference.types import RANGES, SamplingParams
from playground.catalog.snippets import (
    DEFAULT_CHAT_PROMPT,
    DEFAULT_COMPLETION_PROMPT,
    DEFAULT_EMBEDDING_INPUT,
    DEFAULT_SPEECH_INPUT,
)
from playground.contract import openai, tgi
from playground.contract.errors import Problem

BASE = SamplingParams()
SAMPLING_EXAMPLE = ("temperature", "top_p", "top_k", "max_tokens", "presence_penalty", "frequency_penalty")
ERROR_EXAMPLE: dict[str, Any] = Problem(
    "invalid_parameter", "temperature must be a number from 0 to 2 (got 5)", param="temperature"
).body()
ERROR_NOTE = (
    "Errors come back with an HTTP 4xx status (e.g. 401 for a missing, revoked or expired token, 400 for a bad "
    "parameter, 404 for an unknown model) and this body; the /api/ page lists every code."
)


@dataclass(frozen=True)
class SchemaField:
    name: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class EndpointSchema:
    title: str
    method: str
    path: str
    content_type: str  # of the request
    response_type: str
    fields: tuple[SchemaField, ...]
    request_example: str  # pretty JSON (for multipart: the form fields as JSON)
    response_example: str  # pretty JSON, or a description for binary responses
    streaming_note: str = ""
    stream_example: str = ""
    error_example: str = ""
    error_note: str = ERROR_NOTE
    notes: tuple[str, ...] = ()
    related: tuple[EndpointSchema, ...] = field(default=())  # other endpoints serving the same model


def _pretty(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def _type_text(prop: dict[str, Any]) -> str:
    """A JSON schema's type in words: "number", "string | array of strings", "object"."""
    options = prop.get("anyOf", [prop])
    names = []
    for option in options:
        kind = option.get("type")
        if kind == "null" or (not kind and "$ref" not in option):
            continue
        if kind == "array":
            items = option.get("items", {})
            inner = items.get("type") or ("object" if "$ref" in items else "value")
            names.append(f"array of {inner}s")
        else:
            names.append(kind or "object")
    return " | ".join(dict.fromkeys(names)) or "value"


def _default(spec: ModelSpec, name: str) -> Any:
    return spec.defaults.get(name, getattr(BASE, name))


def _fields(model: type[BaseModel], spec: ModelSpec, *, prefix: str = "") -> list[SchemaField]:
    """The request's fields from its contract model; fields only accepted at a neutral value are left out."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", ()))
    fields = []
    for name, prop in schema["properties"].items():
        description = prop.get("description", "")
        if description.startswith("Only "):
            continue
        if name == "model":
            description = f'The model id: "{spec.id}".'
        range_name = prop.get("x-range")
        if range_name in RANGES:
            if range_name == "max_tokens" and spec.n_ctx:
                description += f" This model's context: {spec.n_ctx} tokens."
            default = _default(spec, range_name)
            if default is not None:
                description += f" This model's default: {default}."
        fields.append(SchemaField(f"{prefix}{name}", _type_text(prop), name in required, description))
    return fields


def _sampling_example(spec: ModelSpec) -> dict[str, Any]:
    example = {name: _default(spec, name) for name in SAMPLING_EXAMPLE}
    return {k: v for k, v in example.items() if v is not None}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chat(spec: ModelSpec) -> EndpointSchema:
    fields = _fields(openai.ChatCompletionRequest, spec)
    request = {
        "model": spec.id,
        "messages": [{"role": "user", "content": DEFAULT_CHAT_PROMPT}],
        **_sampling_example(spec),
    }
    response = {
        "id": "chatcmpl-8f3b2c",
        "object": "chat.completion",
        "created": 1767225600,
        "model": spec.id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Waves fold into foam,\n..."},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(14, 17),
    }
    chunk = {
        "id": "chatcmpl-8f3b2c",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": spec.id,
        "choices": [{"index": 0, "delta": {"content": "Waves"}, "finish_reason": None}],
    }
    return EndpointSchema(
        title="Chat completions",
        method="POST",
        path="/v1/chat/completions",
        content_type="application/json",
        response_type="application/json",
        fields=tuple(fields),
        request_example=_pretty(request),
        response_example=_pretty(response),
        streaming_note=_streaming_note("choices[0].delta.content"),
        stream_example=f"data: {json.dumps(chunk)}\n\n...\n\ndata: [DONE]",
        error_example=_pretty(ERROR_EXAMPLE),
        notes=("top_k and repetition_penalty are extensions; with the openai SDK pass them in extra_body.",),
    )


def _streaming_note(where: str) -> str:
    return (
        'With "stream": true the response is text/event-stream: one "data: {...}" line per chunk, the new text '
        f"in {where}, each followed by a blank line; the last chunk carries finish_reason, and the stream ends "
        'with "data: [DONE]".'
    )


def _completion(spec: ModelSpec) -> EndpointSchema:
    fields = _fields(openai.CompletionRequest, spec)
    request = {"model": spec.id, "prompt": DEFAULT_COMPLETION_PROMPT, **_sampling_example(spec)}
    response = {
        "id": "cmpl-41d9a0",
        "object": "text_completion",
        "created": 1767225600,
        "model": spec.id,
        "choices": [{"index": 0, "text": " red, yellow and blue.", "finish_reason": "stop"}],
        "usage": _usage(6, 7),
    }
    chunk = {
        "id": "cmpl-41d9a0",
        "object": "text_completion",
        "created": 1767225600,
        "model": spec.id,
        "choices": [{"index": 0, "text": " red", "finish_reason": None}],
    }
    tgi_params = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")
    generate_fields = [
        *_fields(tgi.GenerateRequest, spec),
        *_fields(tgi.GenerateParameters, spec, prefix="parameters."),
    ]
    defaults = _sampling_example(spec)
    generate_request = {
        "inputs": DEFAULT_COMPLETION_PROMPT,
        "parameters": {
            "max_new_tokens": defaults.get("max_tokens", 256),
            **{k: defaults[k] for k in tgi_params[1:] if k in defaults},
        },
    }
    generate = EndpointSchema(
        title="Text generation (TGI-compatible)",
        method="POST",
        path="/generate",
        content_type="application/json",
        response_type="application/json",
        fields=tuple(generate_fields),
        request_example=_pretty(generate_request),
        response_example=_pretty({"generated_text": " red, yellow and blue."}),
        error_example=_pretty(ERROR_EXAMPLE),
        notes=("For clients written for Hugging Face Text Generation Inference. The model is this one.",),
    )
    return EndpointSchema(
        title="Completions",
        method="POST",
        path="/v1/completions",
        content_type="application/json",
        response_type="application/json",
        fields=tuple(fields),
        request_example=_pretty(request),
        response_example=_pretty(response),
        streaming_note=_streaming_note("choices[0].text"),
        stream_example=f"data: {json.dumps(chunk)}\n\n...\n\ndata: [DONE]",
        error_example=_pretty(ERROR_EXAMPLE),
        notes=("top_k and repetition_penalty are extensions; with the openai SDK pass them in extra_body.",),
        related=(generate,),
    )


def _embeddings(spec: ModelSpec) -> EndpointSchema:
    fields = _fields(openai.EmbeddingRequest, spec)
    response = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.0123, -0.0456, "..."]},
            {"object": "embedding", "index": 1, "embedding": [0.0101, -0.0398, "..."]},
        ],
        "model": spec.id,
        "usage": {"prompt_tokens": 18, "total_tokens": 18},
    }
    return EndpointSchema(
        title="Embeddings",
        method="POST",
        path="/v1/embeddings",
        content_type="application/json",
        response_type="application/json",
        fields=tuple(fields),
        request_example=_pretty({"model": spec.id, "input": DEFAULT_EMBEDDING_INPUT}),
        response_example=_pretty(response),
        error_example=_pretty(ERROR_EXAMPLE),
    )


def _stt_fields(spec: ModelSpec, *, translate: bool) -> tuple[SchemaField, ...]:
    fields = _fields(openai.TranscriptionRequest, spec)
    if "english-only" in spec.capabilities:
        language = 'This model is English-only: "en" or leave it out.'
    else:
        language = "ISO-639-1 code of the spoken language (e.g. en, de); leave it out to detect it."
        if translate:
            language += " The text comes back in English either way."
    fields = [SchemaField(f.name, f.type, f.required, language) if f.name == "language" else f for f in fields]
    audio = SchemaField("file", "file", True, "The audio file (e.g. a WAV), up to 25 MB.")
    return (audio, *fields)


def _speech_to_text(spec: ModelSpec) -> EndpointSchema:
    form = {"file": "@audio.wav", "model": spec.id, "response_format": "json"}
    response = _pretty({"text": "And so, my fellow Americans, ask not what your country can do for you."})
    related: tuple[EndpointSchema, ...] = ()
    if "translate" in spec.capabilities:
        related = (
            EndpointSchema(
                title="Translation into English",
                method="POST",
                path="/v1/audio/translations",
                content_type="multipart/form-data",
                response_type="application/json",
                fields=_stt_fields(spec, translate=True),
                request_example=_pretty(form),
                response_example=response,
                error_example=_pretty(ERROR_EXAMPLE),
                notes=("Speech in any supported language, text in English.",),
            ),
        )
    return EndpointSchema(
        title="Transcription",
        method="POST",
        path="/v1/audio/transcriptions",
        content_type="multipart/form-data",
        response_type="application/json",
        fields=_stt_fields(spec, translate=False),
        request_example=_pretty(form),
        response_example=response,
        error_example=_pretty(ERROR_EXAMPLE),
        notes=("The request is a multipart form; the example shows its fields (file is the uploaded audio).",),
        related=related,
    )


def _text_to_speech(spec: ModelSpec) -> EndpointSchema:
    fields = tuple(_fields(openai.SpeechRequest, spec))
    request = {"model": spec.id, "input": DEFAULT_SPEECH_INPUT, "voice": "default", "speed": 1.0}
    request["response_format"] = "wav"
    return EndpointSchema(
        title="Speech",
        method="POST",
        path="/v1/audio/speech",
        content_type="application/json",
        response_type="audio/wav",
        fields=fields,
        request_example=_pretty(request),
        response_example="The response body is the audio itself: a 16-bit mono WAV file (Content-Type: audio/wav).",
        error_example=_pretty(ERROR_EXAMPLE),
    )


BUILDERS = {
    "text-to-text": _chat,
    "text-completion": _completion,
    "embeddings": _embeddings,
    "speech-to-text": _speech_to_text,
    "text-to-speech": _text_to_speech,
}


def endpoint_schema(spec: ModelSpec) -> EndpointSchema:
    """The endpoint that serves `spec` (plus any others in `related`), with fields, limits and examples."""
    return BUILDERS[spec.task](spec)
