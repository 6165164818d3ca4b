"""The OpenAI dialect (/v1): a body parsed by its contract model (playground/contract/openai.py), run through
playground/serving.py, the answer rendered as the contract's response model.

``service_tier``: "auto" / "default" (or left out) run where the model runs; "gpu" / "gpuflex" insist on the GPU and
get a 400 ``tier_unavailable`` when the model does not run on one. The query parameter ``?serviceTier=`` says the
same. Every answer says where it ran: ``service_tier`` "gpu" or "cpu" in JSON bodies and the X-Service-Tier header.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from inference import ChatMessage, EngineError, ModelSpec, SamplingParams, TextChunk
from inference.audioformat import FORMATS, available, encode
from inference.tools import ArgumentsPiece, CallStart, TextPiece, ToolEvent, ToolUse
from inference.types import Segment, TranscriptionInfo
from playground import engines, serving
from playground.api.http import sse
from playground.contract import openai as contract
from playground.contract.errors import Problem, problem
from playground.contract.fields import parse

OWNER = "genai-playground"
TIERS_ANY = ("auto", "default")
TIERS_GPU = ("gpu", "gpuflex")


# --- models and tiers ----------------------------------------------------------------------------------------------


def model_describe(spec: ModelSpec) -> contract.Model:
    return contract.Model(
        id=spec.id,
        created=int(spec.path.stat().st_mtime) if spec.path.exists() else 0,
        owned_by=OWNER,
        name=spec.name,
        task=spec.task,  # type: ignore[arg-type]  # the catalog checks tasks
        capabilities=list(spec.capabilities),
        context_length=spec.n_ctx or None,
    )


def models_list() -> dict[str, Any]:
    specs = engines.get_pool().specs.values()
    return contract.ModelList(data=[model_describe(spec) for spec in specs]).model_dump(mode="json")


def model_get(*, model_id: str) -> dict[str, Any]:
    try:
        spec = engines.get_pool().spec(model_id)
    except EngineError as exc:  # UnknownModelError
        raise problem(exc, param="model") from None
    return model_describe(spec).model_dump(mode="json")


def service_tier_resolve(*, body_value: str | None, query_value: str | None, model_id: str) -> str:
    """ "auto" or "gpu" (what the caller insists on). A GPU request where the model runs on the CPU is a 400."""
    if body_value is not None and query_value is not None and body_value != query_value:
        raise Problem(
            "invalid_parameter",
            f"service_tier {body_value!r} in the body contradicts serviceTier={query_value!r} in the query",
            param="service_tier",
        )
    value = body_value if body_value is not None else query_value
    if value is None or value in TIERS_ANY:
        return "auto"
    pool = engines.get_pool()
    available = ", ".join(TIERS_ANY + (TIERS_GPU if pool.device.device == "cuda" else ()))
    if value not in TIERS_GPU:
        raise Problem(
            "invalid_parameter", f"unknown service_tier {value!r}; available here: {available}", param="service_tier"
        )
    if pool.device.device != "cuda":
        raise Problem(
            "tier_unavailable",
            f"service_tier {value!r} needs a GPU, and this server runs on the CPU ({pool.device.reason}); "
            f"available here: {available}",
            param="service_tier",
        )
    worker = pool.workers[model_id]
    if worker.state == "loaded" and worker.device != "cuda":
        raise Problem(
            "tier_unavailable",
            f"service_tier {value!r}: the model {model_id} runs on the CPU ({worker.note or 'not offloaded'}); "
            "use service_tier 'auto'",
            param="service_tier",
        )
    return "gpu"


def service_tier_served(*, model_id: str) -> str:
    """Where the model actually ran: "gpu" or "cpu"."""
    pool = engines.get_pool()
    device = pool.workers[model_id].device or pool.device.device
    return "gpu" if device == "cuda" else "cpu"


# --- text: chat and completions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextRequest:
    chat: bool
    model_id: str
    params: SamplingParams
    messages: tuple[ChatMessage, ...]
    prompt: str
    stream: bool
    include_usage: bool
    tools: ToolUse | None = None


def text_request(*, chat: bool, body: dict[str, Any], query_tier: str | None) -> TextRequest:
    """A chat or completions body checked against its contract, the model looked up, the sampling values set."""
    model: type[contract.ChatCompletionRequest | contract.CompletionRequest] = (
        contract.ChatCompletionRequest if chat else contract.CompletionRequest
    )
    parsed = parse(model, body, where=model.where)
    spec = serving.model_for(
        model_id=parsed.model, tasks=("text-to-text" if chat else "text-completion",), where=model.where
    )
    service_tier_resolve(body_value=parsed.service_tier, query_value=query_tier, model_id=spec.id)
    names = {"max_tokens": "max_completion_tokens"} if getattr(parsed, "max_completion_tokens", None) else {}
    overrides = {**parsed.sampling_overrides(), "grammar": serving.format_grammar(parsed.response_format)}
    params = serving.sampling_params(model_id=spec.id, overrides=overrides, names=names)
    messages: tuple[ChatMessage, ...] = ()
    tools = None
    if isinstance(parsed, contract.ChatCompletionRequest):
        messages = tuple(
            ChatMessage(m.engine_role(), m.text(), m.engine_calls(), m.tool_call_id or "") for m in parsed.messages
        )
        tools = parsed.tool_use()
        params = serving.with_tools(params, model_id=spec.id, use=tools)
    return TextRequest(
        chat=chat,
        model_id=spec.id,
        params=params,
        messages=messages,
        prompt=parsed.prompt if isinstance(parsed, contract.CompletionRequest) else "",
        stream=bool(parsed.stream),
        include_usage=parsed.include_usage,
        tools=tools,
    )


def needs_thread(body: dict[str, Any]) -> bool:
    """Whether parsing this body builds a grammar from a JSON Schema (slow for a big schema): a json_schema
    response_format, or tools."""
    response_format = body.get("response_format")
    return bool(body.get("tools")) or (
        isinstance(response_format, dict) and response_format.get("type") == "json_schema"
    )


def _run(request: TextRequest) -> serving.Run[TextChunk]:
    job = serving.text_stream(
        model_id=request.model_id,
        params=request.params,
        messages=request.messages,
        prompt=request.prompt,
        tools=request.tools,
    )
    return serving.Run(job, param="messages" if request.chat else "prompt")


def _finish(reason: str | None) -> contract.FinishReason:
    # "cancelled" only happens when we stopped the engine ourselves; OpenAI's vocabulary has stop, length and
    # tool_calls.
    return reason if reason in ("length", "tool_calls") else "stop"  # type: ignore[return-value]


def _usage(chunk: TextChunk) -> contract.Usage:
    usage = chunk.usage
    prompt, completion = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    return contract.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


async def text_complete(*, request: TextRequest) -> dict[str, Any]:
    """Generate the whole reply; the `chat.completion` or `text_completion` object."""
    run = _run(request)
    reader = serving.ReplyReader(model_id=request.model_id, use=request.tools)
    parts: list[str] = []
    try:
        while True:
            try:
                chunk = await run.next()
            except StopAsyncIteration:
                raise Problem("engine_error", "the model stopped without finishing") from None
            parts += [e.text for e in reader.feed(chunk.text) if isinstance(e, TextPiece)]
            if reader.repeated:
                run.job.cancel()  # the last chunk, with the usage, follows within a token
            if chunk.finish_reason is not None:
                break
    finally:
        await run.close()
    parts += [e.text for e in reader.finish() if isinstance(e, TextPiece)]
    # usage is final here (non-streamed chat and completions)
    tier = service_tier_served(model_id=request.model_id)
    text, finish = "".join(parts), _finish(reader.finish_reason(chunk.finish_reason))
    head: dict[str, Any] = {
        "created": int(time.time()),
        "model": request.model_id,
        "usage": _usage(chunk),
        "service_tier": tier,
        "system_fingerprint": engines.get_pool().fingerprint(request.model_id),
    }
    body: contract.ChatCompletion | contract.Completion
    if request.chat:
        calls = [
            contract.ToolCallOut(
                id=call.id, function=contract.ToolCallFunction(name=call.name, arguments=call.arguments)
            )
            for call in reader.tool_calls()
        ]
        message = contract.AssistantMessage(content=text, tool_calls=None)
        if calls:  # the text before the calls, if the model wrote any
            message = contract.AssistantMessage(content=text.strip() or None, tool_calls=calls)
        choice = contract.ChatChoice(message=message, finish_reason=finish)
        body = contract.ChatCompletion(id=f"chatcmpl-{uuid.uuid4().hex}", choices=[choice], **head)
    else:
        completion = contract.CompletionChoice(text=text, finish_reason=finish)
        body = contract.Completion(id=f"cmpl-{uuid.uuid4().hex}", choices=[completion], **head)
    return body.model_dump(mode="json")


@dataclass
class TextEvents:
    """A started stream: the tier it runs on (for the header) and the SSE bytes to send."""

    service_tier: str
    events: AsyncIterator[bytes]


async def text_events_start(*, request: TextRequest) -> TextEvents:
    """Start a streamed generation. Refusals (context too long, queue full, timeout before the first token) raise
    here, so they still get their HTTP status; later problems become an SSE error event before [DONE]."""
    run = _run(request)
    try:
        first = await run.next()
    except BaseException:
        await run.close()
        raise
    return TextEvents(service_tier_served(model_id=request.model_id), _text_events(request, run, first))


async def _text_events(request: TextRequest, run: serving.Run[TextChunk], first: TextChunk) -> AsyncIterator[bytes]:
    tier = service_tier_served(model_id=request.model_id)
    created = int(time.time())
    head: dict[str, Any] = {
        "id": f"{'chatcmpl' if request.chat else 'cmpl'}-{uuid.uuid4().hex}",
        "created": created,
        "model": request.model_id,
        "service_tier": tier,
        "system_fingerprint": engines.get_pool().fingerprint(request.model_id),
    }
    if request.include_usage:
        head["usage"] = None  # every chunk says it, as OpenAI's do; the extra last chunk has the numbers

    reader = serving.ReplyReader(model_id=request.model_id, use=request.tools)

    def event(
        text: str | None,
        finish: contract.FinishReason | None,
        role: bool = False,
        call: contract.ChunkToolCall | None = None,
    ) -> bytes:
        chunk: contract.ChatCompletionChunk | contract.Completion
        if request.chat:
            delta = contract.ChunkDelta(role="assistant", content=text or "") if role else contract.ChunkDelta()
            if text and not role:
                delta = contract.ChunkDelta(content=text)
            if call is not None:
                delta = contract.ChunkDelta(tool_calls=[call])
            choice = contract.ChatChunkChoice(delta=delta, finish_reason=finish)
            chunk = contract.ChatCompletionChunk(choices=[choice], **head)
        else:
            chunk = contract.Completion(
                choices=[contract.CompletionChoice(text=text or "", finish_reason=finish)], **head
            )
        return sse(_dump_chunk(chunk))

    frame: tuple[bytes, bytes] | None = None

    def text_event(text: str) -> bytes:
        """A piece of text's event: the chunk above, made once around a marker and filled in for each piece (the
        chunks of a reply's text differ only in it), which saves the models' work at every token."""
        nonlocal frame
        if frame is None:
            marker = "\x00piece\x00"
            whole, encoded = event(marker, None), json.dumps(marker, ensure_ascii=False).encode()
            before, _, after = whole.partition(encoded)
            frame = (before, after)
        return frame[0] + json.dumps(text, ensure_ascii=False).encode() + frame[1]

    def events(pieces: list[ToolEvent]) -> Iterator[bytes]:
        """A tool call's first delta has its id and name; its arguments follow in pieces, as OpenAI sends them."""
        for piece in pieces:
            if isinstance(piece, TextPiece):
                yield text_event(piece.text) if piece.text else event(piece.text, None)
            elif isinstance(piece, CallStart):
                function = contract.ChunkFunction(name=piece.name, arguments="")
                start = contract.ChunkToolCall(
                    index=piece.index, id=reader.ids[piece.index], type="function", function=function
                )
                yield event(None, None, call=start)
            elif isinstance(piece, ArgumentsPiece):
                arguments = contract.ChunkFunction(arguments=piece.text)
                yield event(None, None, call=contract.ChunkToolCall(index=piece.index, function=arguments))

    try:
        if request.chat:
            yield event("", None, role=True)
        item: TextChunk | None = first
        while item is not None:
            if item.text:
                for data in events(reader.feed(item.text)):
                    yield data
                if reader.repeated:
                    run.job.cancel()  # the last chunk, with the usage, follows within a token
            if item.finish_reason is not None:
                for data in events(reader.finish()):
                    yield data
                yield event(None, _finish(reader.finish_reason(item.finish_reason)))
                # usage is final here (streamed chat and completions)
                if request.include_usage:
                    last = {**head, "usage": _usage(item)}
                    model = contract.ChatCompletionChunk if request.chat else contract.Completion
                    yield sse(_dump_chunk(model(choices=[], **last)))
                break
            try:
                item = await run.next()
            except StopAsyncIteration:
                item = None
    except Problem as exc:
        yield sse(exc.body())
    finally:
        # Also on a client disconnect: Django cancels this generator and the engine stops within a token.
        await run.close()
    yield sse("[DONE]")


def _dump_chunk(chunk: contract.ChatCompletionChunk | contract.Completion) -> dict[str, Any]:
    """A stream chunk as OpenAI sends it: an empty delta is {}, usage only where it was set."""
    data = chunk.model_dump(mode="json", exclude_unset=True)
    for choice in data["choices"]:
        if "delta" in choice:
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
        choice.setdefault("index", 0)
        choice.setdefault("logprobs", None)
        choice.setdefault("finish_reason", None)
    data["object"] = chunk.object
    return data


# --- embeddings ----------------------------------------------------------------------------------------------------


def _base64_floats(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def embeddings(*, body: dict[str, Any], query_tier: str | None) -> dict[str, Any]:
    """Embed every input; vectors as floats or base64 little-endian float32 (what the openai SDK asks for)."""
    parsed = parse(contract.EmbeddingRequest, body, where=contract.EmbeddingRequest.where)
    spec = serving.model_for(model_id=parsed.model, tasks=("embeddings",), where=parsed.where)
    service_tier_resolve(body_value=parsed.service_tier, query_value=query_tier, model_id=spec.id)
    job = serving.embeddings_job(model_id=spec.id, texts=parsed.input, dimensions=parsed.dimensions)
    result = await serving.run_one(job, param="input")
    # usage is final here (embeddings)
    base64_wanted = parsed.encoding_format == "base64"
    return contract.EmbeddingList(
        data=[
            contract.Embedding(index=i, embedding=_base64_floats(v) if base64_wanted else v)
            for i, v in enumerate(result.vectors)
        ],
        model=spec.id,
        usage=contract.EmbeddingUsage(
            prompt_tokens=result.usage.prompt_tokens, total_tokens=result.usage.prompt_tokens
        ),
        service_tier=service_tier_served(model_id=spec.id),  # type: ignore[arg-type]
    ).model_dump(mode="json")


# --- speech-to-text ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    content: bytes
    content_type: str
    service_tier: str
    filename: str = ""


def _timestamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


async def transcription(*, task: str, fields: dict[str, str], audio: bytes | None, query_tier: str | None) -> Rendered:
    """Transcribe (or translate into English) the audio; the body in the requested response_format."""
    where = "/v1/audio/translations" if task == "translate" else "/v1/audio/transcriptions"
    form = parse(contract.TranscriptionRequest, fields, where=where)
    spec = serving.model_for(model_id=form.model, tasks=("speech-to-text",), where=where)
    if task == "translate" and "english-only" in spec.capabilities:
        raise Problem("invalid_parameter", f"the model {spec.id} is English-only and cannot translate", param="model")
    if audio is None:
        raise Problem("missing_required_parameter", "file is required: the audio as a multipart file", param="file")
    service_tier_resolve(body_value=form.service_tier, query_value=query_tier, model_id=spec.id)
    job = serving.transcription_job(model_id=spec.id, audio=audio, task=task, language=form.spoken_language)
    info: TranscriptionInfo | None = None
    segments: list[Segment] = []
    async for item in serving.Run(job, param="file"):
        if isinstance(item, TranscriptionInfo):
            info = item
        elif isinstance(item, Segment):
            segments.append(item)
    # usage is final here (speech-to-text: info.duration seconds of audio)
    tier = service_tier_served(model_id=spec.id)
    text = " ".join(s.text for s in segments).strip()
    usage = contract.AudioUsage(seconds=round(info.duration, 3) if info else 0.0)
    fmt = form.format
    if fmt == "json":
        body: contract.Transcription | contract.TranscriptionVerbose = contract.Transcription(text=text, usage=usage)
        return Rendered(body.model_dump_json().encode(), "application/json", tier)
    if fmt == "verbose_json":
        body = contract.TranscriptionVerbose(
            task=task,  # type: ignore[arg-type]
            language=info.language if info else "",
            duration=info.duration if info else 0.0,
            text=text,
            segments=[contract.TranscriptionSegment(id=s.id, start=s.start, end=s.end, text=s.text) for s in segments],
            usage=usage,
        )
        return Rendered(body.model_dump_json().encode(), "application/json", tier)
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


async def speech(*, body: dict[str, Any], query_tier: str | None) -> Rendered:
    """Speak the text in the requested format (default wav)."""
    parsed = parse(contract.SpeechRequest, body, where=contract.SpeechRequest.where)
    spec = serving.model_for(model_id=parsed.model, tasks=("text-to-speech",), where=parsed.where)
    if parsed.voice is not None and parsed.voice not in ("default", spec.id, *contract.OPENAI_VOICES):
        raise Problem(
            "invalid_parameter",
            f"voice {parsed.voice!r} is not available; this model has one voice: 'default' (or {spec.id!r}, or any "
            f"of OpenAI's voice names: {', '.join(contract.OPENAI_VOICES)})",
            param="voice",
        )
    fmt = parsed.response_format or "wav"
    if fmt not in available():
        raise Problem(
            "invalid_parameter",
            f"response_format {fmt!r} is not available; this server speaks {', '.join(available())}",
            param="response_format",
        )
    service_tier_resolve(body_value=parsed.service_tier, query_value=query_tier, model_id=spec.id)
    job = serving.speech_job(model_id=spec.id, text=parsed.input, speed=parsed.speed or 1.0)
    result = await serving.run_one(job, param="input")
    # usage is final here (text-to-speech: result.usage.characters)
    audio = result.wav if fmt == "wav" else await sync_to_async(encode, thread_sensitive=False)(result.wav, fmt)
    kind = FORMATS[fmt]
    return Rendered(audio, kind.content_type, service_tier_served(model_id=spec.id), f"speech.{kind.extension}")
