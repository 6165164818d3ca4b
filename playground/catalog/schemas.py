"""The API tab: the HTTP endpoint a model is served on, its request fields with their limits, and examples.

The ranges come from the same place the Playground's form gets them (``SLIDERS`` and the model's ``n_ctx``), so the
documentation cannot drift from what the server accepts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from inference import ModelSpec
from playground.catalog.forms import BASE, SLIDERS
from playground.catalog.snippets import (
    DEFAULT_CHAT_PROMPT,
    DEFAULT_COMPLETION_PROMPT,
    DEFAULT_EMBEDDING_INPUT,
    DEFAULT_SPEECH_INPUT,
    STT_RESPONSE_FORMATS,
)

ERROR_EXAMPLE: dict[str, Any] = {
    "error": {
        "message": "temperature: Ensure this value is less than or equal to 2.0.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": None,
    }
}
ERROR_NOTE = (
    "Errors come back with an HTTP 4xx status (e.g. 401 for a missing, revoked or expired token, 400 for a bad "
    "parameter, 404 for an unknown model) and this body."
)
DESCRIPTIONS = {
    "temperature": "Sampling temperature; 0 is greedy (deterministic), higher is more random.",
    "top_p": "Nucleus sampling: keep the smallest set of tokens whose probabilities add up to top_p.",
    "top_k": "Keep only the k most likely tokens; 0 disables the limit. Extension to the OpenAI API.",
    "max_tokens": "The most tokens to generate; prompt plus output must fit in the context.",
    "presence_penalty": "Penalise tokens that already appeared, to encourage new topics.",
    "frequency_penalty": "Penalise tokens by how often they already appeared.",
    "repetition_penalty": "llama.cpp's repeat penalty; 1 is neutral. Extension to the OpenAI API.",
}


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


def _number_text(value: float | int | None) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _sampling_fields(spec: ModelSpec, *, names: tuple[str, ...] = tuple(SLIDERS)) -> list[SchemaField]:
    fields = []
    for name in names:
        _label, low, high, _step = SLIDERS[name]
        if name == "max_tokens":
            high = spec.n_ctx or 4096
        default = spec.defaults.get(name, getattr(BASE, name))
        kind = "integer" if name in ("top_k", "max_tokens") else "number"
        description = (
            f"{DESCRIPTIONS[name]} Range {_number_text(low)}–{_number_text(high)}; "
            f"this model's default {_number_text(default)}."
        )
        fields.append(SchemaField(name, kind, False, description))
    return fields


def _text_tail_fields() -> list[SchemaField]:
    return [
        SchemaField("seed", "integer", False, "0–4294967295. The same seed and parameters give the same output."),
        SchemaField("stop", "string | array of strings", False, "Up to 4 sequences; generation stops before them."),
        SchemaField(
            "stream", "boolean", False, "Default false. true: the reply arrives as server-sent events (see below)."
        ),
    ]


def _sampling_example(spec: ModelSpec) -> dict[str, Any]:
    example = {name: spec.defaults.get(name, getattr(BASE, name)) for name in SLIDERS}
    return {k: v for k, v in example.items() if v is not None}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chat(spec: ModelSpec) -> EndpointSchema:
    fields = [
        SchemaField("model", "string", True, f'The model id: "{spec.id}".'),
        SchemaField(
            "messages",
            "array of {role, content}",
            True,
            f"The conversation so far; role is system, user or assistant. Must fit in {spec.n_ctx} tokens "
            "together with max_tokens.",
        ),
        *_sampling_fields(spec),
        *_text_tail_fields(),
    ]
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
    fields = [
        SchemaField("model", "string", True, f'The model id: "{spec.id}".'),
        SchemaField(
            "prompt",
            "string",
            True,
            f"The text to continue (no chat template). Must fit in {spec.n_ctx} tokens together with max_tokens.",
        ),
        *_sampling_fields(spec),
        *_text_tail_fields(),
    ]
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
        SchemaField("inputs", "string", True, "The text to continue."),
        SchemaField(
            "parameters",
            "object",
            False,
            f"Any of {', '.join(tgi_params)}, seed, stop (same ranges as above; max_new_tokens is max_tokens).",
        ),
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
    fields = [
        SchemaField("model", "string", True, f'The model id: "{spec.id}".'),
        SchemaField(
            "input",
            "string | array of strings",
            True,
            f"The texts to embed; each at most {spec.n_ctx or 512} tokens. One vector per text, in order.",
        ),
    ]
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
    if "english-only" in spec.capabilities:
        language = 'This model is English-only: "en" or leave it out.'
    else:
        language = "ISO-639-1 code of the spoken language (e.g. en, de); leave it out to detect it."
        if translate:
            language += " The text comes back in English either way."
    return (
        SchemaField("file", "file", True, "The audio file (e.g. a WAV), up to 25 MB."),
        SchemaField("model", "string", True, f'The model id: "{spec.id}".'),
        SchemaField("language", "string", False, language),
        SchemaField(
            "response_format",
            "string",
            False,
            f"One of {', '.join(STT_RESPONSE_FORMATS)}; default json. text, srt and vtt return plain text.",
        ),
    )


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
    fields = (
        SchemaField("model", "string", True, f'The model id: "{spec.id}".'),
        SchemaField("input", "string", True, "The text to speak."),
        SchemaField(
            "voice", "string", False, 'The model\'s voice: "default" (OpenAI\'s voice names, e.g. "alloy", map to it).'
        ),
        SchemaField("speed", "number", False, "Range 0.25–4; default 1."),
        SchemaField("response_format", "string", False, '"wav" (the only format).'),
    )
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
