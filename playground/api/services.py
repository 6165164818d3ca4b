"""The OpenAI-compatible API's services: check a request body, run it on the model's worker, shape the answer.

Choices where OpenAI's contract is silent or does not fit a local server (documented for clients):

- Unknown top-level keys are refused (400, ``param`` names the key). OpenAI keys we cannot honour (tools,
  logit_bias, response_format other than text, ...) are refused the same way unless they are null or their
  neutral value. ``top_k``, ``min_p`` and ``repetition_penalty`` are extensions (the openai SDK sends them
  through ``extra_body``). ``developer`` messages are treated as ``system`` messages.
- Sampling values left out take the model's catalog defaults (also ``max_tokens``), not OpenAI's.
- ``service_tier``: "auto" / "default" (or left out) run where the model runs; "gpu" / "gpuflex" insist on
  the GPU and get a 400 naming the available tiers when this server has none. The same value may be given
  as the query parameter ``?serviceTier=``. Every response says where it ran: ``service_tier`` is "gpu" or
  "cpu" in JSON bodies, and in an ``X-Service-Tier`` header on every successful response.
- A request that runs longer than PLAYGROUND_REQUEST_TIMEOUT seconds (waiting in the queue included) is
  stopped: the engine is cancelled and the answer is 504 with code "timeout"; a stream that has started
  ends with an SSE ``data: {"error": {..., "code": "timeout"}}`` event and then ``data: [DONE]``.
- Speech-to-text: ``temperature`` and ``prompt`` are refused (the engine uses faster-whisper's temperature
  fallback, starting at 0, and no prompt conditioning); ``verbose_json`` segments carry id, start, end and
  text only, and ``language`` is the ISO code the model detected or was given.
- Text-to-speech speaks only WAV (the default here, not mp3); ``voice`` is "default", the model's id, or one of
  OpenAI's voice names (each speaks with the model's one voice).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from inference import ChatMessage, EngineError, Job, ModelSpec, SamplingParams, TextChunk, Usage
from inference.types import ContextOverflowError, InvalidRequestError
from playground import engines
from playground.api.errors import ApiError, from_engine_error
from playground.catalog.services import sampling_params, text_stream
from playground.usage.services import job_timed_out, metering_for

OWNER = "genai-playground"
TIERS_ANY = ("auto", "default")
TIERS_GPU = ("gpu", "gpuflex")
EMBEDDINGS_MAX_INPUTS = 2048
SPEECH_MAX_CHARACTERS = 4096
STT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
TASK_ENDPOINTS = {
    "text-to-text": "/v1/chat/completions",
    "text-completion": "/v1/completions",
    "embeddings": "/v1/embeddings",
    "speech-to-text": "/v1/audio/transcriptions",
    "text-to-speech": "/v1/audio/speech",
}
# Sampling fields as they reach SamplingParams (max_completion_tokens is folded into max_tokens).
SAMPLING_FLOATS = ("temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty")
SAMPLING_INTS = ("top_k", "max_tokens", "max_completion_tokens", "seed")
TEXT_COMMON_KEYS = {
    "model",
    *SAMPLING_FLOATS,
    *SAMPLING_INTS,
    "stop",
    "stream",
    "stream_options",
    "service_tier",
    "user",
    "n",
    "logprobs",
}
CHAT_KEYS = TEXT_COMMON_KEYS | {"messages", "top_logprobs"}
COMPLETION_KEYS = (TEXT_COMMON_KEYS - {"max_completion_tokens"}) | {"prompt", "echo", "best_of", "suffix"}
EMBEDDING_KEYS = {"model", "input", "encoding_format", "dimensions", "user", "service_tier"}
# OpenAI's voice names, accepted so that clients written for OpenAI work unchanged: each speaks with the model's voice.
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "cedar",
    "coral",
    "echo",
    "fable",
    "marin",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)
SPEECH_KEYS = {"model", "input", "voice", "speed", "response_format", "instructions", "stream_format", "service_tier"}
STT_FIELDS = {
    "model",
    "language",
    "prompt",
    "temperature",
    "response_format",
    "timestamp_granularities[]",
    "timestamp_granularities",
    "stream",
    "chunking_strategy",
    "include[]",
    "service_tier",
}
# OpenAI keys we know but cannot honour: accepted only when null or the neutral value given here.
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "logit_bias": ({},),
    "response_format": ({"type": "text"},),
    "tools": ([],),
    "tool_choice": ("none",),
    "parallel_tool_calls": (),
    "functions": ([],),
    "function_call": ("none",),
    "metadata": ({},),
    "store": (False,),
    "modalities": (["text"],),
    "audio": (),
    "prediction": (),
    "reasoning_effort": (),
    "web_search_options": (),
    "verbosity": (),
    "prompt_cache_key": (),
    "safety_identifier": (),
}


# --- reading the request -------------------------------------------------------------------------------------------


def _too_large(size: int) -> ApiError:
    limit = settings.PLAYGROUND_MAX_BODY_BYTES
    return ApiError(
        413,
        f"the request body is {size} bytes; the limit is {limit} bytes",
        code="request_too_large",
    )


def request_size_check(*, request: HttpRequest) -> None:
    """Refuse a body larger than PLAYGROUND_MAX_BODY_BYTES by its Content-Length, before reading it."""
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "the Content-Length header is not a number") from None
    if size > settings.PLAYGROUND_MAX_BODY_BYTES:
        raise _too_large(size)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def json_body_read(*, request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object, or a 400/413 saying what is wrong with it."""
    request_size_check(request=request)
    # The Content-Type is not checked: clients such as `curl -d` label JSON as a form; the body decides.
    try:
        raw = request.body
    except RequestDataTooBig:
        raise _too_large(int(request.META.get("CONTENT_LENGTH") or 0)) from None
    if len(raw) > settings.PLAYGROUND_MAX_BODY_BYTES:
        raise _too_large(len(raw))
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", code="invalid_json")
    return body


def _check_keys(body: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key, value in body.items():
        if key in allowed:
            continue
        if key in NEUTRAL and (value is None or value in NEUTRAL[key]):
            continue
        if key in NEUTRAL:
            raise ApiError(400, f"{key} is not supported by {where}", code="unsupported_parameter", param=key)
        raise ApiError(400, f"unknown parameter {key!r} for {where}", code="unknown_parameter", param=key)


def _type_error(param: str, expected: str) -> ApiError:
    return ApiError(400, f"{param} must be {expected}", code="invalid_type", param=param)


def _string(body: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"{key} is required", code="missing_required_parameter", param=key)
        return None
    if not isinstance(value, str):
        raise _type_error(key, "a string")
    return value


def _bool(body: Mapping[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _type_error(key, "true or false")
    return value


def _number(body: Mapping[str, Any], key: str, *, integer: bool = False) -> float | int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _type_error(key, "an integer" if integer else "a number")
    if integer:
        if isinstance(value, float):
            if not value.is_integer():
                raise _type_error(key, "an integer")
            value = int(value)
        return value
    return float(value)


def _only(body: Mapping[str, Any], key: str, allowed: tuple[Any, ...], why: str) -> None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) != isinstance(allowed[0], bool) or value not in allowed):
        raise ApiError(400, f"{key} must be {why}", code="unsupported_parameter", param=key)


# --- models and tiers ----------------------------------------------------------------------------------------------


def model_spec_for(*, model_id: Any, task: str, endpoint: str) -> ModelSpec:
    """The catalog entry for `model_id`; 404 when it does not exist or serves another task."""
    if model_id is None:
        raise ApiError(400, "model is required", code="missing_required_parameter", param="model")
    if not isinstance(model_id, str):
        raise _type_error("model", "a string")
    spec = engines.get_pool().spec(model_id)
    if spec.task != task:
        raise ApiError(
            404,
            f"the model {model_id!r} serves {spec.task} ({TASK_ENDPOINTS[spec.task]}), not {task} ({endpoint})",
            code="model_not_found",
            param="model",
        )
    return spec


def model_describe(spec: ModelSpec) -> dict[str, Any]:
    created = int(spec.path.stat().st_mtime) if spec.path.exists() else 0
    return {
        "id": spec.id,
        "object": "model",
        "created": created,
        "owned_by": OWNER,
        "name": spec.name,
        "task": spec.task,
        "capabilities": list(spec.capabilities),
        # what this server serves (its KV cache), not what the model was trained for; null for audio models
        "context_length": spec.n_ctx or None,
    }


def models_list() -> dict[str, Any]:
    specs = engines.get_pool().specs.values()
    return {"object": "list", "data": [model_describe(spec) for spec in specs]}


def model_get(*, model_id: str) -> dict[str, Any]:
    return model_describe(engines.get_pool().spec(model_id))


def service_tier_resolve(*, body_value: Any, query_value: str | None, model_id: str) -> str:
    """ "auto" or "gpu" (what the caller insists on). A GPU request on a CPU server is a 400."""
    if body_value is not None and not isinstance(body_value, str):
        raise _type_error("service_tier", "a string")
    if body_value is not None and query_value is not None and body_value != query_value:
        raise ApiError(
            400,
            f"service_tier {body_value!r} in the body contradicts serviceTier={query_value!r} in the query",
            param="service_tier",
        )
    value = body_value if body_value is not None else query_value
    if value is None or value in TIERS_ANY:
        return "auto"
    pool = engines.get_pool()
    available = ", ".join(TIERS_ANY + (TIERS_GPU if pool.device.device == "cuda" else ()))
    if value not in TIERS_GPU:
        raise ApiError(400, f"unknown service_tier {value!r}; available here: {available}", param="service_tier")
    if pool.device.device != "cuda":
        raise ApiError(
            400,
            f"service_tier {value!r} needs a GPU, and this server runs on the CPU ({pool.device.reason}); "
            f"available here: {available}",
            code="tier_unavailable",
            param="service_tier",
        )
    worker = pool.workers[model_id]
    if worker.state == "loaded" and worker.device != "cuda":
        raise ApiError(
            400,
            f"service_tier {value!r}: the model {model_id} runs on the CPU ({worker.note or 'not offloaded'}); "
            "use service_tier 'auto'",
            code="tier_unavailable",
            param="service_tier",
        )
    return "gpu"


def service_tier_served(*, model_id: str) -> str:
    """Where the model actually ran: "gpu" or "cpu"."""
    pool = engines.get_pool()
    device = pool.workers[model_id].device or pool.device.device
    return "gpu" if device == "cuda" else "cpu"


# --- running jobs with the time limit ------------------------------------------------------------------------------


def _timeout_seconds() -> float:
    return float(settings.PLAYGROUND_REQUEST_TIMEOUT)


def _timeout_error() -> ApiError:
    limit = _timeout_seconds()
    return ApiError(
        504,
        f"the request took longer than this server's limit of {limit:g} seconds; the model was stopped",
        type="timeout_error",
        code="timeout",
    )


class _Runner:
    """Iterate a job against a deadline; past it the engine is stopped and ApiError(504, code="timeout") raised."""

    def __init__(self, job: Job[Any], *, param: str | None = None) -> None:
        self.job = job
        self.param = param
        self.deadline = asyncio.get_running_loop().time() + _timeout_seconds()
        self._items: AsyncIterator[Any] = aiter(job)

    async def next(self) -> Any:
        """The next item, or StopAsyncIteration when the job ended."""
        try:
            async with asyncio.timeout_at(self.deadline):
                return await anext(self._items)
        except TimeoutError:
            job_timed_out(self.job)
            self.job.cancel()
            raise _timeout_error() from None
        except ContextOverflowError as exc:
            raise ApiError(400, str(exc), code=exc.code, param=self.param) from None
        except InvalidRequestError as exc:
            raise _invalid(exc, self.param) from None

    async def close(self) -> None:
        """Stop the engine if it is still running (a no-op after the job ended)."""
        self.job.cancel()
        await self._items.aclose()  # type: ignore[attr-defined]  # Job.__aiter__ is an async generator


def _invalid(exc: InvalidRequestError, default_param: str | None) -> ApiError:
    """An engine's refusal as a 400 that names the parameter its message is about, where that is clear."""
    error = from_engine_error(exc)
    message = str(exc)
    for name in (*SAMPLING_FLOATS, *SAMPLING_INTS, "speed", "language", "stop", "dimensions"):
        if message.startswith(name) or f" {name} " in f" {message} ".replace(";", " "):
            error.param = name
            break
    else:
        error.param = default_param
    if "translate" in message:
        error.param = "model"
    return error


async def _one_result(job: Job[Any], *, param: str | None) -> Any:
    runner = _Runner(job, param=param)
    try:
        return await runner.next()
    finally:
        await runner.close()


def _submit(model_id: str, fn: Callable[[Any, threading.Event], Iterator[Any]]) -> Job[Any]:
    return engines.get_pool().submit(model_id, fn, metering_for(model_id=model_id))


# --- text: chat and completions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextRequest:
    kind: str  # "chat" | "completion"
    model_id: str
    params: SamplingParams
    messages: tuple[ChatMessage, ...]
    prompt: str
    stream: bool
    include_usage: bool
    service_tier: str  # what was asked: "auto" | "gpu"


def _messages(body: Mapping[str, Any]) -> tuple[ChatMessage, ...]:
    raw = body.get("messages")
    if raw is None:
        raise ApiError(400, "messages is required", code="missing_required_parameter", param="messages")
    if not isinstance(raw, list) or not raw:
        raise _type_error("messages", "a non-empty list of messages")
    messages = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _type_error(where, "an object with role and content")
        for key in message:
            if key not in ("role", "content"):
                raise ApiError(
                    400, f"{where}.{key} is not supported", code="unsupported_parameter", param=f"{where}.{key}"
                )
        role = message.get("role")
        if role == "developer":
            role = "system"  # OpenAI's newer name for the system prompt
        if role not in ("system", "user", "assistant"):
            raise ApiError(400, f"{where}.role must be system, developer, user or assistant", param=f"{where}.role")
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for n, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ApiError(
                        400,
                        f"{where}.content[{n}]: only text parts are supported",
                        code="unsupported_parameter",
                        param=f"{where}.content",
                    )
                parts.append(part["text"])
            content = "\n".join(parts)
        if not isinstance(content, str):
            raise _type_error(f"{where}.content", "a string or a list of text parts")
        messages.append(ChatMessage(role, content))
    return tuple(messages)


def _prompt(body: Mapping[str, Any]) -> str:
    prompt = body.get("prompt")
    if prompt is None:
        raise ApiError(400, "prompt is required", code="missing_required_parameter", param="prompt")
    if isinstance(prompt, list):
        if any(isinstance(p, int | list) for p in prompt):
            raise ApiError(
                400, "prompt: token arrays are not supported; send text", code="unsupported_parameter", param="prompt"
            )
        if len(prompt) != 1:
            raise ApiError(400, "prompt: send one prompt per request", code="unsupported_parameter", param="prompt")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _type_error("prompt", "a string (token arrays are not supported)")
    if not prompt:
        raise ApiError(400, "prompt must not be empty", param="prompt")
    return prompt


def _stop(body: Mapping[str, Any]) -> tuple[str, ...] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    if isinstance(stop, str):
        return (stop,)
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _type_error("stop", "a string or a list of strings")
    return tuple(stop)


def _sampling(body: Mapping[str, Any], model_id: str) -> SamplingParams:
    overrides: dict[str, Any] = {name: _number(body, name) for name in SAMPLING_FLOATS}
    for name in SAMPLING_INTS:
        overrides[name] = _number(body, name, integer=True)
    completion_tokens = overrides.pop("max_completion_tokens")
    max_param = "max_tokens"
    if completion_tokens is not None:
        if overrides["max_tokens"] is not None and overrides["max_tokens"] != completion_tokens:
            raise ApiError(
                400, "max_tokens and max_completion_tokens disagree; send one", param="max_completion_tokens"
            )
        overrides["max_tokens"], max_param = completion_tokens, "max_completion_tokens"
    overrides["stop"] = _stop(body)
    try:
        return sampling_params(model_id=model_id, overrides=overrides)
    except InvalidRequestError as exc:
        error = _invalid(exc, None)
        if error.param == "max_tokens":
            error.param = max_param
        raise error from None


def text_request_parse(*, kind: str, body: Mapping[str, Any], query_tier: str | None) -> TextRequest:
    """Check a chat (kind "chat") or completions (kind "completion") body; every refusal is a 400 naming its param."""
    chat = kind == "chat"
    endpoint = "/v1/chat/completions" if chat else "/v1/completions"
    _check_keys(body, CHAT_KEYS if chat else COMPLETION_KEYS, endpoint)
    spec = model_spec_for(
        model_id=body.get("model"), task="text-to-text" if chat else "text-completion", endpoint=endpoint
    )
    messages = _messages(body) if chat else ()
    prompt = "" if chat else _prompt(body)
    n = _number(body, "n", integer=True)
    if n is not None and n != 1:
        raise ApiError(400, "n must be 1: this server returns one choice per request", param="n")
    if chat:
        _only(body, "logprobs", (False,), "false: log probabilities are not available")
        _only(body, "top_logprobs", (0,), "0 or null: log probabilities are not available")
    else:
        _only(body, "logprobs", (0,), "0 or null: log probabilities are not available")
        _only(body, "echo", (False,), "false: the prompt is not echoed")
        _only(body, "best_of", (1,), "1: one candidate is generated")
        _only(body, "suffix", ("",), "empty: insertion is not supported")
    _string(body, "user")
    stream = bool(_bool(body, "stream"))
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise ApiError(400, "stream_options is only allowed with stream: true", param="stream_options")
        if not isinstance(options, dict):
            raise _type_error("stream_options", "an object")
        for key in options:
            if key != "include_usage":
                raise ApiError(
                    400, f"stream_options.{key} is not supported", code="unsupported_parameter", param="stream_options"
                )
        include_usage = bool(_bool(options, "include_usage"))
    tier = service_tier_resolve(body_value=body.get("service_tier"), query_value=query_tier, model_id=spec.id)
    return TextRequest(
        kind=kind,
        model_id=spec.id,
        params=_sampling(body, spec.id),
        messages=messages,
        prompt=prompt,
        stream=stream,
        include_usage=include_usage,
        service_tier=tier,
    )


def _usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _finish(reason: str | None) -> str:
    # "cancelled" only happens when we stopped the engine ourselves; OpenAI's vocabulary has stop and length.
    return "length" if reason == "length" else "stop"


def _fingerprint(tier: str) -> str:
    return f"fp_{OWNER}_{tier}"


def _text_job(request: TextRequest) -> Job[TextChunk]:
    return text_stream(
        model_id=request.model_id, params=request.params, messages=request.messages, prompt=request.prompt
    )


def _text_runner(request: TextRequest) -> _Runner:
    return _Runner(_text_job(request), param="messages" if request.kind == "chat" else "prompt")


async def text_complete(*, request: TextRequest) -> dict[str, Any]:
    """Generate the whole reply; the `chat.completion` or `text_completion` object."""
    runner = _text_runner(request)
    parts: list[str] = []
    try:
        while True:
            try:
                chunk = await runner.next()
            except StopAsyncIteration:
                raise ApiError(500, "the model stopped without finishing", type="server_error") from None
            parts.append(chunk.text)
            if chunk.finish_reason is not None:
                break
    finally:
        await runner.close()
    usage = chunk.usage or Usage()
    # usage is final here (non-streamed chat and completions)
    tier = service_tier_served(model_id=request.model_id)
    text, finish = "".join(parts), _finish(chunk.finish_reason)
    head = {"created": int(time.time()), "model": request.model_id}
    if request.kind == "chat":
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None,
            "finish_reason": finish,
        }
        body = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", **head}
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        body = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", **head}
    return {
        **body,
        "choices": [choice],
        "usage": _usage_json(usage),
        "service_tier": tier,
        "system_fingerprint": _fingerprint(tier),
    }


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event carrying JSON (or the literal [DONE])."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


@dataclass
class TextEvents:
    """A started stream: the tier it runs on (for the header) and the SSE bytes to send."""

    service_tier: str
    events: AsyncIterator[bytes]


async def text_events_start(*, request: TextRequest) -> TextEvents:
    """Start a streamed generation. Refusals (context too long, queue full, timeout before the first token) raise
    here, so they still get their HTTP status; later problems become an SSE error event before [DONE]."""
    runner = _text_runner(request)
    try:
        first = await runner.next()
    except BaseException:
        await runner.close()
        raise
    return TextEvents(service_tier_served(model_id=request.model_id), _text_events(request, runner, first))


async def _text_events(request: TextRequest, runner: _Runner, first: TextChunk) -> AsyncIterator[bytes]:
    chat = request.kind == "chat"
    tier = service_tier_served(model_id=request.model_id)
    base: dict[str, Any] = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": request.model_id,
        "service_tier": tier,
        "system_fingerprint": _fingerprint(tier),
    }

    def event(text: str | None, finish: str | None, role: bool = False) -> bytes:
        if chat:
            delta: dict[str, Any] = {"role": "assistant", "content": text or ""} if role else {}
            if text and not role:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        data = {**base, "choices": [choice]}
        if request.include_usage:
            data["usage"] = None
        return sse(data)

    try:
        if chat:
            yield event("", None, role=True)
        chunk: TextChunk | None = first
        while chunk is not None:
            if chunk.text:
                yield event(chunk.text, None)
            if chunk.finish_reason is not None:
                yield event(None, _finish(chunk.finish_reason))
                # usage is final here (streamed chat and completions)
                if request.include_usage:
                    yield sse({**base, "choices": [], "usage": _usage_json(chunk.usage or Usage())})
                break
            try:
                chunk = await runner.next()
            except StopAsyncIteration:
                chunk = None
    except ApiError as exc:
        yield sse(exc.body())
    except EngineError as exc:
        yield sse(from_engine_error(exc).body())
    finally:
        # Also on a client disconnect: Django cancels this generator and the engine stops within a token.
        await runner.close()
    yield sse("[DONE]")


# --- embeddings ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingsRequest:
    model_id: str
    texts: tuple[str, ...]
    encoding_format: str
    dimensions: int | None
    service_tier: str


def embeddings_request_parse(*, body: Mapping[str, Any], query_tier: str | None) -> EmbeddingsRequest:
    _check_keys(body, EMBEDDING_KEYS, "/v1/embeddings")
    spec = model_spec_for(model_id=body.get("model"), task="embeddings", endpoint="/v1/embeddings")
    raw = body.get("input")
    if raw is None:
        raise ApiError(400, "input is required", code="missing_required_parameter", param="input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts:
        raise _type_error("input", "a string or a non-empty list of strings")
    if len(texts) > EMBEDDINGS_MAX_INPUTS:
        raise ApiError(400, f"input has {len(texts)} items; the limit is {EMBEDDINGS_MAX_INPUTS}", param="input")
    for index, text in enumerate(texts):
        if isinstance(text, int | list):
            raise ApiError(
                400, "input: token arrays are not supported; send text", code="unsupported_parameter", param="input"
            )
        if not isinstance(text, str):
            raise _type_error("input", "a string or a list of strings")
        if not text:
            raise ApiError(400, f"input[{index}] must not be empty", param="input")
    encoding = _string(body, "encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise ApiError(400, "encoding_format must be 'float' or 'base64'", param="encoding_format")
    dimensions = _number(body, "dimensions", integer=True)
    _string(body, "user")
    tier = service_tier_resolve(body_value=body.get("service_tier"), query_value=query_tier, model_id=spec.id)
    return EmbeddingsRequest(
        model_id=spec.id,
        texts=tuple(texts),
        encoding_format=encoding,
        dimensions=int(dimensions) if dimensions is not None else None,
        service_tier=tier,
    )


def _base64_floats(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def embeddings_create(*, request: EmbeddingsRequest) -> dict[str, Any]:
    """Embed every input; vectors as floats or base64 little-endian float32 (what the openai SDK asks for)."""
    texts, wanted = list(request.texts), request.dimensions

    def run(engine: Any, _stop: threading.Event) -> Iterator[Any]:
        if wanted is not None and wanted != engine.dimensions:
            yield engine.dimensions  # the model's size, checked before any work
            return
        yield engine.embed(texts)

    result = await _one_result(_submit(request.model_id, run), param="input")
    if isinstance(result, int):
        raise ApiError(
            400,
            f"dimensions: this model returns {result}-dimensional vectors and cannot shorten them",
            code="unsupported_parameter",
            param="dimensions",
        )
    # usage is final here (embeddings)
    encode = _base64_floats if request.encoding_format == "base64" else (lambda v: v)
    tier = service_tier_served(model_id=request.model_id)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(result.vectors)],
        "model": request.model_id,
        "usage": {"prompt_tokens": result.usage.prompt_tokens, "total_tokens": result.usage.prompt_tokens},
        "service_tier": tier,
    }


# --- speech-to-text ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptionRequest:
    task: str  # "transcribe" | "translate"
    model_id: str
    audio: bytes
    language: str | None
    response_format: str
    service_tier: str


def multipart_read(*, request: HttpRequest) -> tuple[dict[str, str], bytes | None]:
    """(text fields, the uploaded `file`), refusing repeated fields and oversized bodies."""
    request_size_check(request=request)
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise ApiError(400, "send the audio as multipart/form-data with a file field", code="invalid_content_type")
    try:
        post, files = request.POST, request.FILES
    except RequestDataTooBig:
        raise _too_large(int(request.META.get("CONTENT_LENGTH") or 0)) from None
    fields: dict[str, str] = {}
    for key, values in post.lists():
        if len(values) > 1 and not key.endswith("[]"):
            raise ApiError(400, f"{key} was sent {len(values)} times", param=key)
        fields[key] = ",".join(values)
    for key in files:
        if key != "file":
            raise ApiError(400, f"unknown file field {key!r}", code="unknown_parameter", param=key)
    upload = files.get("file")
    if upload is None:
        return fields, None
    if upload.size is not None and upload.size > settings.PLAYGROUND_MAX_BODY_BYTES:
        raise _too_large(upload.size)
    return fields, upload.read()


def transcription_request_parse(
    *, task: str, fields: Mapping[str, str], audio: bytes | None, query_tier: str | None
) -> TranscriptionRequest:
    endpoint = "/v1/audio/translations" if task == "translate" else "/v1/audio/transcriptions"
    _check_keys(fields, STT_FIELDS, endpoint)
    spec = model_spec_for(model_id=fields.get("model"), task="speech-to-text", endpoint=endpoint)
    if task == "translate" and "english-only" in spec.capabilities:
        raise ApiError(400, f"the model {spec.id} is English-only and cannot translate", param="model")
    if audio is None:
        raise ApiError(400, "file is required: the audio as a multipart file", param="file")
    if not audio:
        raise ApiError(400, "the audio file is empty", param="file")
    if (fields.get("prompt") or "").strip():
        raise ApiError(
            400, "prompt is not supported: this server's Whisper runs without prompt conditioning", param="prompt"
        )
    if (fields.get("temperature") or "").strip():
        raise ApiError(
            400,
            "temperature is not adjustable here: Whisper starts at 0 and raises it only for a segment that decodes "
            "poorly (faster-whisper's fallback)",
            code="unsupported_parameter",
            param="temperature",
        )
    response_format = (fields.get("response_format") or "json").strip()
    if response_format not in STT_FORMATS:
        raise ApiError(400, f"response_format must be one of {', '.join(STT_FORMATS)}", param="response_format")
    for key in ("timestamp_granularities[]", "timestamp_granularities"):
        granularities = [g.strip() for g in (fields.get(key) or "").split(",") if g.strip()]
        if any(g != "segment" for g in granularities):
            raise ApiError(400, f"{key}: only 'segment' timestamps are available", param=key)
    if (fields.get("stream") or "false").strip().lower() not in ("false", "0", ""):
        raise ApiError(400, "stream is not supported for audio", code="unsupported_parameter", param="stream")
    for key in ("chunking_strategy", "include[]"):
        if (fields.get(key) or "").strip():
            raise ApiError(400, f"{key} is not supported", code="unsupported_parameter", param=key)
    tier = service_tier_resolve(body_value=fields.get("service_tier"), query_value=query_tier, model_id=spec.id)
    language = (fields.get("language") or "").strip() or None
    return TranscriptionRequest(
        task=task,
        model_id=spec.id,
        audio=audio,
        language=language,
        response_format=response_format,
        service_tier=tier,
    )


def _timestamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


@dataclass(frozen=True)
class Rendered:
    content: bytes
    content_type: str
    service_tier: str


async def transcription_create(*, request: TranscriptionRequest) -> Rendered:
    """Transcribe (or translate into English) the audio; the body in the requested response_format."""
    audio, language, task = request.audio, request.language, request.task

    def run(engine: Any, stop: threading.Event) -> Iterator[Any]:
        info, segments = engine.transcribe(audio, language=language, task=task, stop_event=stop)
        parts = []
        for segment in segments:
            if stop.is_set():
                return
            parts.append(segment)
        yield info, parts

    info, segments = await _one_result(_submit(request.model_id, run), param="file")
    # usage is final here (speech-to-text: info.duration seconds of audio)
    tier = service_tier_served(model_id=request.model_id)
    text = " ".join(s.text for s in segments).strip()
    usage = {"type": "duration", "seconds": round(info.duration, 3)}
    fmt = request.response_format
    if fmt == "json":
        return Rendered(json.dumps({"text": text, "usage": usage}).encode(), "application/json", tier)
    if fmt == "verbose_json":
        body = {
            "task": request.task,
            "language": info.language,
            "duration": info.duration,
            "text": text,
            "segments": [{"id": s.id, "start": s.start, "end": s.end, "text": s.text} for s in segments],
            "usage": usage,
        }
        return Rendered(json.dumps(body).encode(), "application/json", tier)
    if fmt == "text":
        return Rendered((text + "\n").encode(), "text/plain; charset=utf-8", tier)
    if fmt == "srt":
        blocks = [
            f"{n}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text}\n"
            for n, s in enumerate(segments, 1)
        ]
        return Rendered("\n".join(blocks).encode(), "text/plain; charset=utf-8", tier)
    cues = [f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text}\n" for s in segments]
    return Rendered(("WEBVTT\n\n" + "\n".join(cues)).encode(), "text/vtt; charset=utf-8", tier)


# --- text-to-speech ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechRequest:
    model_id: str
    text: str
    speed: float
    service_tier: str


def speech_request_parse(*, body: Mapping[str, Any], query_tier: str | None) -> SpeechRequest:
    _check_keys(body, SPEECH_KEYS, "/v1/audio/speech")
    spec = model_spec_for(model_id=body.get("model"), task="text-to-speech", endpoint="/v1/audio/speech")
    text = _string(body, "input", required=True) or ""
    if not text.strip():
        raise ApiError(400, "input must not be empty", param="input")
    if len(text) > SPEECH_MAX_CHARACTERS:
        raise ApiError(400, f"input is {len(text)} characters; the limit is {SPEECH_MAX_CHARACTERS}", param="input")
    voice = _string(body, "voice")
    if voice is not None and voice not in ("default", spec.id, *OPENAI_VOICES):
        raise ApiError(
            400,
            f"voice {voice!r} is not available; this model has one voice: 'default' (or {spec.id!r}, or any of "
            f"OpenAI's voice names: {', '.join(OPENAI_VOICES)})",
            param="voice",
        )
    speed = _number(body, "speed")
    speed = 1.0 if speed is None else speed
    if not 0.25 <= speed <= 4.0:
        raise ApiError(400, "speed must be between 0.25 and 4.0", param="speed")
    response_format = _string(body, "response_format")
    if response_format not in (None, "wav"):
        raise ApiError(
            400, "response_format must be 'wav': the only format this server produces", param="response_format"
        )
    if _string(body, "instructions"):
        raise ApiError(
            400, "instructions are not supported by this voice", code="unsupported_parameter", param="instructions"
        )
    if _string(body, "stream_format") not in (None, "audio"):
        raise ApiError(400, "stream_format must be 'audio'", code="unsupported_parameter", param="stream_format")
    tier = service_tier_resolve(body_value=body.get("service_tier"), query_value=query_tier, model_id=spec.id)
    return SpeechRequest(model_id=spec.id, text=text, speed=float(speed), service_tier=tier)


async def speech_create(*, request: SpeechRequest) -> Rendered:
    """Synthesize the text; a 16-bit WAV."""
    text, speed = request.text, request.speed

    def run(engine: Any, _stop: threading.Event) -> Iterator[Any]:
        yield engine.synthesize(text, speed=speed)

    result = await _one_result(_submit(request.model_id, run), param="input")
    # usage is final here (text-to-speech: result.usage.characters)
    return Rendered(result.wav, "audio/wav", service_tier_served(model_id=request.model_id))
