"""The one path from every surface to a model: look-up, sampling values, the time limit, cancellation, metering.

The chat and studio sockets, /v1, the TGI routes and the bulk worker all come through here, so a model is looked
up, a request is timed and stopped, and an inference is metered the same way whichever door it came in by.
Refusals are ``Problem``s from the one error vocabulary (playground/contract/errors.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, cast

from django.conf import settings

from inference import ChatMessage, EngineError, Job, ModelSpec, SamplingParams, TextChunk
from inference.protocols import EmbeddingEngine, Engine, SpeechToTextEngine, TextEngine, TextToSpeechEngine
from inference.serving import Owner
from inference.tools import (
    ArgumentsPiece,
    CallEnd,
    CallStart,
    TextPiece,
    ToolCallParser,
    ToolEvent,
    ToolUse,
    call_grammar,
    render,
    template_tools,
)
from inference.types import (
    RANGES,
    SPEECH_SPEED,
    EmbeddingResult,
    InvalidParameterError,
    InvalidRequestError,
    Overflow,
    Segment,
    SpeechResult,
    TextResult,
    Tool,
    ToolCall,
    TranscriptionEnd,
    TranscriptionInfo,
    check_stop,
)
from playground import engines
from playground.contract.errors import Problem, problem
from playground.contract.openai import ResponseFormat
from playground.usage.services import caller_current, job_timed_out, metering_for

logger = logging.getLogger(__name__)

TEXT_TASKS = ("text-to-text", "text-completion")
# The endpoint that serves each task, named when a model is asked for on another task's endpoint.
TASK_ENDPOINTS = {
    "text-to-text": "/v1/chat/completions",
    "text-completion": "/v1/completions",
    "embeddings": "/v1/embeddings",
    "speech-to-text": "/v1/audio/transcriptions",
    "text-to-speech": "/v1/audio/speech",
}


# --- models ------------------------------------------------------------------------------------------------------


def model_for(*, model_id: object, tasks: Sequence[str], where: str) -> ModelSpec:
    """The catalog entry for `model_id` if it serves one of `tasks`; else the Problem saying why (404 for an
    unknown model or one that serves another task)."""
    if model_id is None or model_id == "":
        raise Problem("missing_required_parameter", "model is required", param="model")
    if not isinstance(model_id, str):
        raise Problem("invalid_type", "model must be a string", param="model")
    try:
        spec = engines.get_pool().spec(model_id)
    except EngineError as exc:
        raise problem(exc, param="model") from None
    if spec.task not in tasks:
        raise Problem(
            "model_not_found",
            f"the model {model_id!r} serves {spec.task} ({TASK_ENDPOINTS[spec.task]}), not {where}",
            param="model",
        )
    return spec


def queue_owner() -> Owner | None:
    """Who is asking, for the model's fair waiting line: the current caller's user and API token (None outside any
    caller: operator tools), with this site's caps per user read now (0 in the settings: see settings.py)."""
    caller = caller_current()  # the metering caller, set once per request, socket or bulk job
    if caller is None:
        return None
    if settings.PLAYGROUND_ROLE == "engine":  # one caller, the web tier, which shares the model out fairly itself
        return Owner(user=getattr(caller.user, "pk", None))
    return Owner(
        user=getattr(caller.user, "pk", None),
        token=getattr(caller.token, "pk", None),
        max_waiting=settings.PLAYGROUND_MAX_WAITING_PER_USER or None,
        max_running=settings.PLAYGROUND_MAX_RUNNING_PER_USER or None,
    )


# --- the time limit ----------------------------------------------------------------------------------------------


def timeout_seconds() -> float:
    """How long any request may take, waiting in line included (PLAYGROUND_REQUEST_TIMEOUT)."""
    return float(settings.PLAYGROUND_REQUEST_TIMEOUT)


def timeout_problem() -> Problem:
    return Problem(
        "timeout",
        f"the request took longer than this server's limit of {timeout_seconds():g} seconds; the model was stopped",
    )


def _stopped_for_time(job: Job[Any]) -> Problem:
    job_timed_out(job)
    job.cancel()
    return timeout_problem()


def _engine_failed(job: Job[Any], exc: Exception) -> Problem:
    logger.error("model %s failed: %r", job.worker.model_id, exc)
    return Problem("engine_error", "the model failed while answering; the server log has the details")


class Run[T]:
    """Iterate a job against the time limit. Past it the engine is stopped, the meter records a timeout and
    Problem("timeout") is raised; an engine's refusal is raised as its Problem (naming `param` when it names
    nothing itself). ``close()`` stops the engine if it is still running."""

    def __init__(self, job: Job[T], *, param: str | None = None) -> None:
        self.job = job
        self.param = param
        self._items: AsyncIterator[T] = job.items(until=asyncio.get_running_loop().time() + timeout_seconds())

    async def next(self) -> T:
        """The next item; StopAsyncIteration when the job has ended."""
        try:
            return await anext(self._items)
        except StopAsyncIteration:
            raise
        except TimeoutError:
            raise _stopped_for_time(self.job) from None
        except EngineError as exc:
            raise problem(exc, param=self.param) from None
        except Exception as exc:  # the engine itself failed; the meter has recorded the error
            raise _engine_failed(self.job, exc) from exc

    async def __aiter__(self) -> AsyncIterator[T]:
        try:
            while True:
                try:
                    yield await self.next()
                except StopAsyncIteration:
                    return
        finally:
            await self.close()

    async def close(self) -> None:
        self.job.cancel()
        await self._items.aclose()  # type: ignore[attr-defined]  # Job.__aiter__ is an async generator


async def run_one[T](job: Job[T], *, param: str | None = None) -> T:
    """The first item of a job that yields one result (embeddings, speech), within the time limit."""
    run = Run(job, param=param)
    try:
        return await run.next()
    finally:
        await run.close()


def run_all[T](job: Job[T], *, stopped: threading.Event | None = None) -> list[T]:
    """Every item of a job, blocking (the bulk worker), within the time limit; `stopped` cancels it early."""
    deadline = time.monotonic() + timeout_seconds()
    items: list[T] = []
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _stopped_for_time(job)
            try:
                finished, item = job.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if stopped is not None and stopped.is_set():
                    job.cancel()
                continue
            except EngineError as exc:
                raise problem(exc) from None
            except Exception as exc:
                raise _engine_failed(job, exc) from exc
            if finished:
                return items
            items.append(item)
    finally:
        job.cancel()


# --- constrained replies -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _regex_grammar(pattern: str) -> str:
    from inference.grammar import check_gbnf
    from inference.regex_gbnf import gbnf_from_regex

    grammar = gbnf_from_regex(pattern)
    check_gbnf(grammar)
    return grammar


def grammar_for_schema(schema: object, *, param: str) -> str:
    """The GBNF grammar of JSON valid against `schema`, its properties in the schema's order. Slow for a big
    schema: call it off the event loop. An unsupported schema feature is a 400 naming it."""
    if not isinstance(schema, dict):
        raise Problem("invalid_type", f"{param} must be a JSON Schema object", param=param)
    from inference.grammar import gbnf_from_json_schema  # caches by the schema's text (its key order matters)

    try:
        return gbnf_from_json_schema(schema)
    except InvalidRequestError as exc:
        raise Problem("invalid_parameter", f"{param}: {exc}", param=param) from None
    except (ValueError, TypeError, KeyError, RecursionError, AttributeError) as exc:  # the converter's own failures
        raise Problem(
            "invalid_parameter", f"{param}: this schema cannot be turned into a grammar ({exc!r})", param=param
        ) from None


def grammar_for_regex(pattern: object, *, param: str) -> str:
    """The GBNF grammar of replies matching the regular expression `pattern` whole (cached)."""
    if not isinstance(pattern, str) or not pattern:
        raise Problem("invalid_type", f"{param} must be a non-empty regular expression", param=param)
    try:
        return _regex_grammar(pattern)
    except InvalidRequestError as exc:
        raise Problem("invalid_parameter", f"{param}: {exc}", param=param) from None


def json_object_grammar() -> str:
    from inference.grammar import JSON_OBJECT_GBNF

    return JSON_OBJECT_GBNF


def format_grammar(response_format: ResponseFormat | None) -> str | None:
    """The grammar an OpenAI response_format asks for (a json_schema's is built here: slow for a big schema, so
    call it off the event loop); None for free text."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.json_schema is None:
        return json_object_grammar()
    return grammar_for_schema(response_format.json_schema.schema_, param="response_format.json_schema.schema")


# --- tools -------------------------------------------------------------------------------------------------------


def with_tools(params: SamplingParams, *, model_id: str, use: ToolUse | None) -> SamplingParams:
    """The sampling values with the grammar that keeps this request's tool calls valid: the whole reply for
    `required` or a named tool, from the model's opening tag on for `auto`. Slow for big schemas (cached): call
    it off the event loop. A bad tool list, or tools beside a response_format, is a 400."""
    if use is None:
        return params
    try:
        use.check()
    except InvalidRequestError as exc:
        raise Problem("invalid_parameter", str(exc), param=exc.param) from None
    if not use.active:
        return params
    spec = engines.get_pool().spec(model_id)
    if spec.remote:
        raise Problem(
            "unsupported_parameter",
            "this model is served by another server: tools are not available for it; leave them out",
            param="tools",
        )
    if params.grammar is not None:
        raise Problem(
            "unsupported_parameter",
            "response_format cannot be combined with tools: a reply is either tool calls or the formatted JSON; "
            'send tool_choice "none" or leave response_format out',
            param="response_format",
        )
    fmt = spec.tool_format
    try:
        grammar = call_grammar(use.callable(), fmt, parallel=use.parallel and use.choice in ("auto", "required"))
    except InvalidRequestError as exc:
        raise Problem("invalid_parameter", str(exc), param=exc.param or "tools") from None
    return dataclasses.replace(params, grammar=grammar, grammar_trigger=None if use.forced else fmt.open)


class ReplyReader:
    """A chat reply read as it streams: its text, and (for a request with tools) its calls, each with an id.

    `feed` each chunk's text and `finish` at the end; both return ToolEvents (inference/tools.py). A call's
    events are held until the call is complete (its arguments still come in the pieces generated), so a call that
    repeats one already made is dropped: small models repeat a call until the token limit, so the reply ends there
    (`repeated`: cancel the job). The finish reason is "tool_calls" when the reply ended after complete calls."""

    def __init__(self, *, model_id: str, use: ToolUse | None) -> None:
        self.parser = ToolCallParser(engines.get_pool().spec(model_id).tool_format) if use and use.active else None
        self.ids: list[str] = []
        self.calls: list[tuple[str, str]] = []  # (name, arguments) of each complete call
        self.repeated = False
        self.incomplete = False  # the reply ended inside a call
        self._call: list[ToolEvent] = []  # the events of the call being read

    def _read(self, events: list[ToolEvent]) -> list[ToolEvent]:
        out: list[ToolEvent] = []
        for event in events:
            if self.repeated:
                break
            if isinstance(event, TextPiece):
                out.append(event)
            elif not isinstance(event, CallEnd):
                self._call.append(event)
            else:
                out += self._complete(event)
        return out

    def _complete(self, end: CallEnd) -> list[ToolEvent]:
        events, self._call = self._call, []
        start = events[0]
        assert isinstance(start, CallStart)
        arguments = "".join(e.text for e in events if isinstance(e, ArgumentsPiece))
        call = (start.name, _canonical(arguments))
        if call in ((name, _canonical(args)) for name, args in self.calls):
            self.repeated = True
            return []
        self.ids.append(f"call_{uuid.uuid4().hex[:24]}")
        self.calls.append((start.name, arguments))
        return [*events, end]

    def feed(self, text: str) -> list[ToolEvent]:
        if self.parser is None:
            return [TextPiece(text)] if text else []
        return self._read(self.parser.feed(text))

    def finish(self) -> list[ToolEvent]:
        """The rest; a call cut short (by max_tokens) is given with its arguments as far as they got."""
        if self.parser is None:
            return []
        events = self._read(self.parser.finish())
        if self._call and not self.repeated:
            start = self._call[0]
            assert isinstance(start, CallStart)
            self.ids.append(f"call_{uuid.uuid4().hex[:24]}")
            arguments = "".join(e.text for e in self._call if isinstance(e, ArgumentsPiece))
            self.calls.append((start.name, arguments))
            events += self._call
            self._call = []
            self.incomplete = True
        return events

    def tool_calls(self) -> list[ToolCall]:
        return [ToolCall(id=i, name=name, arguments=args) for i, (name, args) in zip(self.ids, self.calls, strict=True)]

    def finish_reason(self, engine_reason: str) -> str:
        if self.calls and not self.incomplete and (engine_reason == "stop" or self.repeated):
            return "tool_calls"
        return engine_reason


# --- text --------------------------------------------------------------------------------------------------------


def sampling_params(
    *, model_id: str, overrides: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> SamplingParams:
    """The model's catalog defaults, then the caller's values, checked against RANGES (max_tokens against the
    model's context). A refusal names the parameter as the caller's dialect does (`names`: canonical -> its name)."""
    spec = engines.get_pool().spec(model_id)
    values: dict[str, Any] = {**spec.defaults, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        for name in ("top_k", "max_tokens", "seed"):  # integers given as 5.0 (RANGES accepts them)
            if isinstance(values.get(name), float):
                RANGES[name].check(values[name])
                values[name] = int(values[name])
        if values.get("max_tokens") is not None:
            RANGES["max_tokens"].check(values["max_tokens"], high=spec.n_ctx or None)
        if "stop" in values:
            values["stop"] = check_stop(values["stop"])
        return SamplingParams(**values)
    except InvalidParameterError as exc:
        name = (names or {}).get(exc.param or "", exc.param or "")
        raise Problem("invalid_parameter", str(exc.renamed(name)), param=name) from None


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments


def _chat_input(
    spec: ModelSpec, messages: Sequence[ChatMessage], tools: ToolUse | None
) -> tuple[Sequence[ChatMessage], tuple[Tool, ...]]:
    """The turns and tools a chat model's engine gets: tools (and earlier calls and results) described in the turns
    for a template without a tool section, or handed to a tool-aware one, as the catalog says."""
    described = tools.tools if tools is not None and tools.active else ()
    if spec.tool_format.template == "injected":
        return render(messages, described, spec.tool_format), ()
    return messages, described


_COUNTS: dict[tuple[str, tuple[ChatMessage, ...], str], int] = {}
COUNT_CACHE_SIZE = 1024


def count_prompt_tokens(*, model_id: str, messages: Sequence[ChatMessage], tools: ToolUse | None = None) -> int:
    """How many tokens these messages (and tools) take through the model's template: a context meter's reading.
    Blocking (loads the model the first time, tokenizes): call it off the event loop. Cached by its input."""
    spec = model_for(model_id=model_id, tasks=("text-to-text",), where="a context count")
    turns, described = _chat_input(spec, messages, tools)
    key = (model_id, tuple(turns), json.dumps(template_tools(described), sort_keys=True, default=str))
    if key not in _COUNTS:

        def count(engine: TextEngine) -> int:
            return engine.count_chat_tokens(turns, described)

        worker = engines.get_pool().worker(model_id)
        if worker.state == "loaded":  # tokenizing only reads the vocabulary: safe beside a running generation
            _COUNTS[key] = count(cast(TextEngine, worker.engine))
        else:  # on the model's worker, which loads it
            _COUNTS[key] = engines.get_pool().call(model_id, count)
        while len(_COUNTS) > COUNT_CACHE_SIZE:
            _COUNTS.pop(next(iter(_COUNTS)))
    return _COUNTS[key]


def text_stream(
    *,
    model_id: str,
    params: SamplingParams,
    messages: Sequence[ChatMessage] = (),
    prompt: str = "",
    background: bool = False,
    tools: ToolUse | None = None,
    overflow: Overflow = "refuse",
    continue_final: bool = False,
) -> Job[TextChunk]:
    """Queue a generation; iterate the job (through Run or run_all) for chunks. A chat model takes messages (or
    the prompt as one user message), a completion model a prompt. The last chunk says why it stopped (and, with
    `overflow` "drop_oldest", how many of the oldest messages were left out so the rest fit the context). With
    `continue_final` a chat's last message, an assistant reply, is continued: the chunks are what comes next.

    A chat's tools (and earlier calls and results in its messages) reach the model as its catalog entry says
    (inference/tools.py); `params` carries their grammar (`with_tools`). Background (bulk) generations wait behind
    every interactive request for the same model.
    """
    pool = engines.get_pool()
    spec = model_for(model_id=model_id, tasks=TEXT_TASKS, where="text generation")
    if spec.task == "text-to-text":
        if not messages:
            if not prompt:
                raise Problem("invalid_parameter", "a chat model needs messages", param="messages")
            messages = [ChatMessage("user", prompt)]
        turns, described = _chat_input(spec, messages, tools)

        def run(engine: TextEngine, stop: threading.Event) -> Iterator[TextChunk]:
            return engine.chat(turns, params, stop, described, overflow, continue_final)

    else:
        if not prompt:
            raise Problem("invalid_parameter", "a completion model needs a prompt", param="prompt")

        def run(engine: TextEngine, stop: threading.Event) -> Iterator[TextChunk]:
            return engine.complete(prompt, params, stop)

    return pool.submit(model_id, run, metering_for(model_id=model_id), background=background, owner=queue_owner())


def text_generate(
    *, model_id: str, params: SamplingParams, messages: Sequence[ChatMessage] = (), prompt: str = ""
) -> TextResult:
    """Generate a whole reply (blocking), within the time limit."""
    chunks = run_all(text_stream(model_id=model_id, params=params, messages=messages, prompt=prompt))
    last = chunks[-1]
    assert last.finish_reason is not None and last.usage is not None  # the engine contract
    return TextResult(
        text="".join(c.text for c in chunks),
        finish_reason=last.finish_reason,
        usage=last.usage,
        stop_sequence=last.stop_sequence,
    )


# --- embeddings, speech-to-text, text-to-speech ------------------------------------------------------------------


def _submit[E: Engine, T](model_id: str, fn: Callable[[E, threading.Event], Iterator[T]]) -> Job[T]:
    return engines.get_pool().submit(model_id, fn, metering_for(model_id=model_id), owner=queue_owner())


def embeddings_job(*, model_id: str, texts: Sequence[str], dimensions: int | None = None) -> Job[EmbeddingResult]:
    """Embed each text (vectors L2-normalised). `dimensions` must be the model's own size, and all the texts
    together at most PLAYGROUND_EMBEDDINGS_MAX_TOKENS tokens: both checked on the worker before any work. The
    engine stops between texts once the job is cancelled or timed out."""
    texts = list(texts)
    max_tokens = settings.PLAYGROUND_EMBEDDINGS_MAX_TOKENS

    def run(engine: EmbeddingEngine, stop: threading.Event) -> Iterator[EmbeddingResult]:
        if dimensions is not None and dimensions != engine.dimensions:
            raise Problem(
                "unsupported_parameter",
                f"dimensions: this model returns {engine.dimensions}-dimensional vectors and cannot shorten them",
                param="dimensions",
            )
        total = sum(engine.count_tokens(text) for text in texts)
        if total > max_tokens:
            raise Problem(
                "invalid_parameter",
                f"input is {total} tokens in all; the limit per request is {max_tokens}",
                param="input",
            )
        yield engine.embed(texts, stop)

    return _submit(model_id, run)


TranscriptionItem = TranscriptionInfo | Segment | TranscriptionEnd


def transcription_job(
    *,
    model_id: str,
    audio: bytes,
    task: str = "transcribe",
    language: str | None = None,
    max_seconds: float | None = None,
) -> Job[TranscriptionItem]:
    """Queue a transcription (or translation into English). The job yields one TranscriptionInfo, each Segment as
    it is decoded, then a TranscriptionEnd. Undecodable audio raises AudioDecodeError before anything is yielded."""
    if not audio:
        raise Problem("invalid_parameter", "the audio file is empty", param="file")
    limit = settings.PLAYGROUND_MAX_AUDIO_SECONDS if max_seconds is None else max_seconds

    def run(engine: SpeechToTextEngine, stop: threading.Event) -> Iterator[TranscriptionItem]:
        started = time.monotonic()  # the engine is loaded by now: the factor measures decoding only
        info, segments = engine.transcribe(
            audio, language=language or None, task=task, stop_event=stop, max_seconds=limit
        )
        yield info
        for segment in segments:
            if stop.is_set():
                return
            yield segment
        yield TranscriptionEnd(audio_seconds=info.duration, processing_seconds=time.monotonic() - started)

    return _submit(model_id, run)


def speech_job(*, model_id: str, text: str, speed: float = 1.0) -> Job[SpeechResult]:
    """Speak the text: one SpeechResult (a 16-bit WAV)."""
    try:
        SPEECH_SPEED.check(speed)
    except InvalidParameterError as exc:
        raise Problem("invalid_parameter", str(exc), param="speed") from None

    def run(engine: TextToSpeechEngine, stop: threading.Event) -> Iterator[SpeechResult]:
        yield engine.synthesize(text, speed=speed, stop_event=stop)

    return _submit(model_id, run)
