"""Hugging Face Text Generation Inference (TGI) dialect: request checks, parameter mapping, generation and SSE.

What TGI calls a parameter is mapped onto our SamplingParams; its finish reasons are told apart exactly by scanning
for stop sequences here, on the model's worker thread, instead of inside the engine (the engine only says "stop" for
both an end-of-sequence token and a stop sequence). Like TGI, generated_text keeps the stop sequence it ended on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from inference import ChatMessage, Job, ModelSpec, SamplingParams, TextChunk, Usage
from inference.text import StopScanner
from inference.types import EngineError
from playground import engines
from playground.api.errors import ApiError, from_engine_error
from playground.catalog.services import sampling_params
from playground.usage.services import job_timed_out, metering_for

VERSION = "0.1.0"
TEXT_TASKS = ("text-to-text", "text-completion")
MAX_STOP_SEQUENCES = 4
SEED_LIMIT = 2**32

TgiFinish = Literal["length", "eos_token", "stop_sequence", "cancelled"]

# The TGI parameters we honour. Penalties beyond repetition_penalty are TGI's too (frequency_penalty).
PARAMETERS = (
    "max_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "frequency_penalty",
    "stop",
    "seed",
    "do_sample",
    "details",
)
# TGI parameters we cannot honour: accepted only at their neutral values, because TGI clients
# (huggingface_hub, text-generation) send some of them on every request.
NEUTRAL_PARAMETERS: dict[str, tuple[object, ...]] = {
    "best_of": (None, 1),
    "decoder_input_details": (None, False),
    "return_full_text": (None, False),
    "truncate": (None,),
    "typical_p": (None, 1.0),
    "watermark": (None, False),
    "top_n_tokens": (None, 0),
    "grammar": (None,),
    "adapter_id": (None,),
}
TOP_LEVEL_KEYS = ("inputs", "parameters", "stream")

# Images written the way TGI's vision models take them, or as Markdown.
IMAGE_PATTERN = re.compile(r"<image>.*?</image>|!\[[^\]]*\]\([^)]*\)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class TgiRequest:
    model_id: str
    inputs: str
    params: SamplingParams
    details: bool
    stream: bool | None  # None: the route decides
    sampling: bool  # False: greedy (temperature 0); details.seed is then null, as in TGI


@dataclass(frozen=True)
class Piece:
    """One piece of a reply in TGI's terms; the last has a finish reason and usage."""

    text: str
    finish_reason: TgiFinish | None = None
    usage: Usage | None = None


# -- checking a request -------------------------------------------------------------------------------------------


def text_model_spec(*, model_id: str) -> ModelSpec:
    """The catalog entry of a text model; 404 for an unknown model or one that does not generate text."""
    try:
        spec = engines.get_pool().spec(model_id)
    except EngineError as exc:
        raise from_engine_error(exc) from None
    if spec.task not in TEXT_TASKS:
        raise ApiError(
            404,
            f"the model {model_id!r} is a {spec.task} model; TGI routes serve text models "
            f"(tasks {', '.join(TEXT_TASKS)})",
            code="model_not_found",
            param="model",
        )
    return spec


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, f"parameters.{name} {message}", code="invalid_parameter", param=f"parameters.{name}")


def _check_number(name: str, value: object, low: float, high: float, *, low_open: bool = False) -> float:
    if _is_number(value):
        number = float(value)  # type: ignore[arg-type]
        if (number > low if low_open else number >= low) and number <= high:
            return number
    bracket = "(" if low_open else "["
    raise _bad(name, f"must be a number in {bracket}{low:g}, {high:g}] (got {json.dumps(value)})")


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if not _is_int(value) or not low <= value <= high:  # type: ignore[operator]
        raise _bad(name, f"must be an integer from {low} to {high} (got {json.dumps(value)})")
    return value  # type: ignore[return-value]


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _bad(name, f"must be true or false (got {json.dumps(value)})")
    return value


def _check_stop(value: object) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise _bad("stop", f"must be a list of non-empty strings (got {json.dumps(value)})")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise _bad("stop", f"may hold at most {MAX_STOP_SEQUENCES} sequences (got {len(stops)})")
    return tuple(stops)


def _check_no_images(spec: ModelSpec, inputs: str) -> None:
    if "vision" in spec.capabilities:
        return
    found = IMAGE_PATTERN.search(inputs)
    if found:
        shown = found.group(0) if len(found.group(0)) <= 60 else found.group(0)[:57] + "..."
        raise ApiError(
            400,
            f"the model {spec.id!r} cannot read images (it has no vision capability), but inputs contain "
            f"an image: {shown!r}. Send text only.",
            code="image_input_not_supported",
            param="inputs",
        )


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def request_parse(*, body: bytes, model_id: str) -> TgiRequest:
    """Check a TGI request body for a model and map it onto SamplingParams; every refusal names its field."""
    spec = text_model_spec(model_id=model_id)
    try:
        data = json.loads(body or b"null", parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, 'the request body must be a JSON object: {"inputs": "...", "parameters": {...}}')
    unknown = sorted(set(data) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ApiError(
            400,
            f"unknown field(s) {', '.join(unknown)}; a TGI request has {', '.join(TOP_LEVEL_KEYS)}",
            code="unknown_parameter",
            param=unknown[0],
        )
    inputs = data.get("inputs")
    if not isinstance(inputs, str) or not inputs.strip():
        raise ApiError(400, "inputs must be a non-empty string", param="inputs")
    _check_no_images(spec, inputs)
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ApiError(400, f"stream must be true or false (got {json.dumps(stream)})", param="stream")
    raw = data.get("parameters")
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ApiError(400, "parameters must be a JSON object", param="parameters")

    unknown = sorted(set(raw) - set(PARAMETERS) - set(NEUTRAL_PARAMETERS))
    if unknown:
        names = ", ".join(f"parameters.{name}" for name in unknown)
        raise ApiError(
            400,
            f"unknown parameter(s) {names}; supported: {', '.join(PARAMETERS)}",
            code="unknown_parameter",
            param=f"parameters.{unknown[0]}",
        )
    for name, neutral in NEUTRAL_PARAMETERS.items():
        if name in raw and raw[name] not in neutral:
            allowed = " or ".join(json.dumps(n) for n in neutral)
            raise ApiError(
                400,
                f"parameters.{name} is not supported by this server; leave it out or send {allowed}",
                code="unsupported_parameter",
                param=f"parameters.{name}",
            )

    given = {name: raw[name] for name in PARAMETERS if raw.get(name) is not None}
    overrides: dict[str, Any] = {}
    if "max_new_tokens" in given:
        overrides["max_tokens"] = _check_int("max_new_tokens", given["max_new_tokens"], 1, spec.n_ctx or 4096)
    if "temperature" in given:
        overrides["temperature"] = _check_number("temperature", given["temperature"], 0.0, 2.0)
    if "top_p" in given:
        overrides["top_p"] = _check_number("top_p", given["top_p"], 0.0, 1.0)
    if "top_k" in given:
        overrides["top_k"] = _check_int("top_k", given["top_k"], 0, 2**31 - 1)
    if "repetition_penalty" in given:
        overrides["repetition_penalty"] = _check_number(
            "repetition_penalty", given["repetition_penalty"], 0.0, 2.0, low_open=True
        )
    if "frequency_penalty" in given:
        overrides["frequency_penalty"] = _check_number("frequency_penalty", given["frequency_penalty"], -2.0, 2.0)
    if "stop" in given:
        overrides["stop"] = _check_stop(given["stop"])
    if "seed" in given:
        overrides["seed"] = _check_int("seed", given["seed"], 0, SEED_LIMIT - 1)
    details = _check_bool("details", given["details"]) if "details" in given else False
    do_sample = _check_bool("do_sample", given["do_sample"]) if "do_sample" in given else None

    # do_sample false is greedy whatever else is set; left out, TGI samples only when a sampling
    # parameter (temperature, top_p, top_k) is given, so a bare request is greedy there and here.
    if do_sample is None:
        do_sample = any(name in given for name in ("temperature", "top_p", "top_k"))
    if not do_sample:
        overrides["temperature"] = 0.0
    try:
        params = sampling_params(model_id=spec.id, overrides=overrides)
    except EngineError as exc:
        raise from_engine_error(exc) from None
    sampling = params.temperature > 0
    if sampling and params.seed is None:
        # Choose the seed here so details can report it, as TGI does.
        params = dataclasses.replace(params, seed=random.randrange(SEED_LIMIT))
    return TgiRequest(model_id=spec.id, inputs=inputs, params=params, details=details, stream=stream, sampling=sampling)


# -- generating ---------------------------------------------------------------------------------------------------


def _pieces(chunks: Iterator[TextChunk], stops: Sequence[str], stop_event: threading.Event) -> Iterator[Piece]:
    """Runs on the model's worker thread: a stop sequence sets the stop flag, so the engine stops at once."""
    scanner = StopScanner(stops, keep_stop=True)  # TGI keeps the stop sequence in the text
    hit = False
    for chunk in chunks:
        text = ""
        if not hit:
            text, hit = scanner.feed(chunk.text)
            if hit:
                stop_event.set()
            elif chunk.finish_reason is not None:
                text += scanner.flush()
        if chunk.finish_reason is None:
            if text:
                yield Piece(text)
            continue
        finish: TgiFinish
        if hit:
            finish = "stop_sequence"
        elif chunk.finish_reason == "stop":
            finish = "eos_token"
        elif chunk.finish_reason == "length":
            finish = "length"
        else:
            finish = "cancelled"
        yield Piece(text, finish, chunk.usage or Usage())
        return


def generation_start(*, request: TgiRequest) -> Job[Piece]:
    """Queue the generation on the model's worker. A chat model gets inputs as one user message through its
    template, a completion model gets inputs as the plain prompt."""
    pool = engines.get_pool()
    spec = pool.spec(request.model_id)
    engine_params = dataclasses.replace(request.params, stop=())  # stop sequences are scanned in _pieces
    stops = request.params.stop
    inputs = request.inputs

    def run(engine: Any, stop_event: threading.Event) -> Iterator[Piece]:
        if spec.task == "text-to-text":
            chunks = engine.chat([ChatMessage("user", inputs)], engine_params, stop_event)
        else:
            chunks = engine.complete(inputs, engine_params, stop_event)
        return _pieces(chunks, stops, stop_event)

    return pool.submit(request.model_id, run, metering_for(model_id=request.model_id))


def engine_error(exc: EngineError) -> ApiError:
    """from_engine_error, naming TGI's field when the prompt is too long."""
    error = from_engine_error(exc)
    if exc.code == "context_length_exceeded":
        error.param = "inputs"
    return error


def _timeout_error(seconds: float) -> ApiError:
    return ApiError(
        504,
        f"the request took longer than {seconds:g} seconds (PLAYGROUND_REQUEST_TIMEOUT); the generation was stopped",
        type="timeout_error",
        code="timeout",
    )


async def generation_collect(*, job: Job[Piece], timeout: float) -> list[Piece]:
    """The whole reply; past the timeout the engine is stopped and a 504 raised."""
    pieces: list[Piece] = []
    try:
        async with asyncio.timeout(timeout):
            async for piece in job:
                pieces.append(piece)
    except TimeoutError:
        job_timed_out(job)
        job.cancel()
        raise _timeout_error(timeout) from None
    except EngineError as exc:
        raise engine_error(exc) from None
    return pieces


# -- TGI's response shapes ----------------------------------------------------------------------------------------


def _token(index: int, piece: Piece) -> dict[str, Any]:
    # The engine yields text, not vocabulary ids: id is the piece's position in the reply. No logprobs either.
    special = piece.finish_reason == "eos_token" and not piece.text
    return {"id": index, "text": piece.text, "logprob": None, "special": special}


def _details(request: TgiRequest, last: Piece) -> dict[str, Any]:
    usage = last.usage or Usage()
    return {
        "finish_reason": last.finish_reason,
        "generated_tokens": usage.completion_tokens,
        "seed": request.params.seed if request.sampling else None,
    }


def generate_body(*, request: TgiRequest, pieces: list[Piece]) -> dict[str, Any]:
    """POST /generate's answer: generated_text and details (finish_reason, generated_tokens, seed) always; the
    tokens too when asked for (`details: true`). TGI clients ignore what they did not ask for."""
    details = _details(request, pieces[-1])
    if request.details:
        details |= {"prefill": [], "tokens": [_token(n, p) for n, p in enumerate(pieces)]}
    return {"generated_text": "".join(p.text for p in pieces), "details": details}


def _event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class EventStream:
    """POST /generate_stream's body: one server-sent event per piece, the last with generated_text and details.

    An async iterable with close(): Django cancels the iteration when the client disconnects and calls close()
    when the response ends either way; both stop the engine.
    """

    def __init__(self, *, job: Job[Piece], request: TgiRequest, timeout: float) -> None:
        self.job = job
        self.request = request
        self.timeout = timeout
        self.deadline = asyncio.get_running_loop().time() + timeout
        self._pieces = aiter(job)
        self._first: Piece | None = None

    async def _next(self) -> Piece | None:
        try:
            async with asyncio.timeout_at(self.deadline):
                return await anext(self._pieces)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            job_timed_out(self.job)
            self.job.cancel()
            raise _timeout_error(self.timeout) from None
        except EngineError as exc:
            self.job.cancel()
            raise engine_error(exc) from None

    async def start(self) -> None:
        """Wait for the first piece, so a refusal (queue full, context overflow, timeout) is still an HTTP error."""
        self._first = await self._next()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        texts: list[str] = []
        index = 0
        piece = self._first
        try:
            while piece is not None:
                texts.append(piece.text)
                event: dict[str, Any] = {"token": _token(index, piece), "generated_text": None, "details": None}
                if piece.finish_reason is not None:
                    event["generated_text"] = "".join(texts)
                    event["details"] = {
                        **_details(self.request, piece),
                        "input_length": (piece.usage or Usage()).prompt_tokens,
                    }
                yield _event(event)
                index += 1
                try:
                    piece = await self._next()
                except ApiError as exc:
                    # Headers are gone: report the error the way TGI does inside a stream.
                    yield _event({"error": exc.message, "error_type": exc.code or exc.type})
                    return
        finally:
            self.close()

    def close(self) -> None:
        self.job.cancel()


# -- GET /info ----------------------------------------------------------------------------------------------------


def info_body(*, model_id: str) -> dict[str, Any]:
    """TGI's /info for a text model, from its catalog entry and the pool."""
    spec = text_model_spec(model_id=model_id)
    pool = engines.get_pool()
    worker = pool.workers[spec.id]
    n_ctx = spec.n_ctx or 4096
    return {
        "model_id": spec.id,
        "model_sha": None,
        "model_dtype": spec.quantization or None,
        "model_device_type": worker.device or pool.device.device,
        "model_pipeline_tag": "text-generation",
        "quantization": spec.quantization or None,
        "task": spec.task,
        "chat_template": spec.task == "text-to-text",
        "state": worker.state,
        "max_concurrent_requests": 1 + worker.max_queue,  # one running plus the waiting line
        "max_queue": worker.max_queue,
        "max_best_of": 1,
        "max_stop_sequences": MAX_STOP_SEQUENCES,
        "max_input_tokens": n_ctx - 1,
        "max_input_length": n_ctx - 1,  # TGI's older name for max_input_tokens
        "max_total_tokens": n_ctx,
        "max_batch_size": 1,
        "max_client_batch_size": 1,
        "waiting_served_ratio": None,
        "max_batch_total_tokens": n_ctx,
        "max_waiting_tokens": None,
        "validation_workers": None,
        "router": "genai-playground",
        "version": VERSION,
        "sha": None,
        "docker_label": None,
    }
