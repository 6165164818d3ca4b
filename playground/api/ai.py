"""The unified-inference dialect (/ai/): a body parsed by its contract model (playground/contract/ai.py), run through
playground/serving.py like every other surface, the answer rendered as the contract's response model.

Tokens, limits, the fair queue and the ledger are the API's own (playground/api/auth.py: ``api_view``); usage rows
carry the route as their endpoint (``/ai/chat``, ``/ai/generate``, ``/ai/embeddings``). Errors have this dialect's
shape (``contract.error_body``), picked for these routes by playground/api/http.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from inference import ChatMessage, ModelSpec, SamplingParams, TextChunk
from inference.tools import CallEnd, TextPiece, ToolEvent, ToolUse
from playground import engines, serving
from playground.api import openai
from playground.api.http import sse
from playground.contract import ai as contract
from playground.contract.errors import Problem
from playground.contract.fields import parse
from playground.contract.openai import ToolCallFunction, ToolCallOut, Usage

PROVIDER = openai.OWNER
# The /ai/ routes each task answers, first among a model's capabilities.
TASK_CAPABILITIES: dict[str, tuple[str, ...]] = {
    "text-to-text": ("chat", "generate"),
    "text-completion": ("generate",),
    "embeddings": ("embeddings",),
}
# The catalog's capability names in this dialect's words; others only trade "-" for "_".
CAPABILITY_NAMES = {"tools": "function_calling"}


# --- models --------------------------------------------------------------------------------------------------------


def capabilities(spec: ModelSpec) -> list[str]:
    named = (CAPABILITY_NAMES.get(name, name.replace("-", "_")) for name in spec.capabilities)
    return list(dict.fromkeys((*TASK_CAPABILITIES[spec.task], *named)))


def models_list() -> dict[str, Any]:
    """The models the /ai/ routes serve (text and embeddings; audio models have no route here)."""
    specs = [spec for spec in engines.get_pool().specs.values() if spec.task in TASK_CAPABILITIES]
    models = [
        contract.AiModel(
            id=spec.id, provider=PROVIDER, capabilities=capabilities(spec), context_length=spec.n_ctx or None
        )
        for spec in specs
    ]
    return contract.AiModelList(models=models).model_dump(mode="json")


# --- text: chat and generate ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextRequest:
    model_id: str
    params: SamplingParams
    messages: tuple[ChatMessage, ...]
    prompt: str
    stream: bool
    tools: ToolUse | None = None


def needs_thread(body: dict[str, Any]) -> bool:
    """Whether parsing this chat body builds a grammar from a JSON Schema (tools, or a json_schema
    response_format: the fields /v1 has too)."""
    return openai.needs_thread(body)


def chat_request(*, body: dict[str, Any]) -> TextRequest:
    """A chat body checked against its contract, the model looked up, the sampling values and the tools' grammar
    set (slow for big schemas: call it off the event loop when `needs_thread(body)`)."""
    parsed = parse(contract.AiChatRequest, body, where=contract.AiChatRequest.where)
    spec = serving.model_for(model_id=parsed.model, tasks=("text-to-text",), where=parsed.where)
    overrides = {**parsed.sampling_overrides(), "grammar": serving.format_grammar(parsed.response_format)}
    params = serving.sampling_params(model_id=spec.id, overrides=overrides)
    tools = parsed.tool_use()
    params = serving.with_tools(params, model_id=spec.id, use=tools)
    messages = tuple(
        ChatMessage(m.engine_role(), m.text(), m.engine_calls(), m.tool_call_id or "") for m in parsed.messages
    )
    return TextRequest(
        model_id=spec.id, params=params, messages=messages, prompt="", stream=bool(parsed.stream), tools=tools
    )


def generate_request(*, body: dict[str, Any]) -> TextRequest:
    """A generate body: a completion model continues the prompt, a chat model gets it as one user message."""
    parsed = parse(contract.AiGenerateRequest, body, where=contract.AiGenerateRequest.where)
    spec = serving.model_for(model_id=parsed.model, tasks=serving.TEXT_TASKS, where=parsed.where)
    params = serving.sampling_params(model_id=spec.id, overrides=parsed.sampling_overrides())
    return TextRequest(
        model_id=spec.id,
        params=params,
        messages=(ChatMessage("user", parsed.prompt),),
        prompt=parsed.prompt,
        stream=False,
    )


def _run(request: TextRequest) -> serving.Run[TextChunk]:
    job = serving.text_stream(
        model_id=request.model_id,
        params=request.params,
        messages=request.messages,
        prompt=request.prompt,
        tools=request.tools,
    )
    return serving.Run(job, param="prompt" if request.prompt else "messages")


def _finish(reason: str | None) -> contract.FinishReason:
    # "cancelled" only happens when we stopped the engine ourselves (a repeated tool call).
    return reason if reason in ("length", "tool_calls") else "stop"  # type: ignore[return-value]


def _usage(chunk: TextChunk) -> Usage:
    usage = chunk.usage
    prompt, completion = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


@dataclass(frozen=True)
class Reply:
    text: str
    reader: serving.ReplyReader
    last: TextChunk

    @property
    def finish_reason(self) -> contract.FinishReason:
        return _finish(self.reader.finish_reason(self.last.finish_reason or "stop"))


async def _reply(request: TextRequest) -> Reply:
    """Generate the whole reply, read into text and tool calls (serving.ReplyReader)."""
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
    return Reply(text="".join(parts), reader=reader, last=chunk)


def _calls(reader: serving.ReplyReader) -> list[ToolCallOut]:
    return [
        ToolCallOut(id=call.id, function=ToolCallFunction(name=call.name, arguments=call.arguments))
        for call in reader.tool_calls()
    ]


async def chat_complete(*, request: TextRequest) -> dict[str, Any]:
    reply = await _reply(request)
    # usage is final here (non-streamed /ai/chat)
    calls = _calls(reply.reader)
    message = contract.AiMessage(content=reply.text, tool_calls=None)
    if calls:  # the text before the calls, if the model wrote any
        message = contract.AiMessage(content=reply.text.strip() or None, tool_calls=calls)
    return contract.AiChatResponse(
        id=f"chat-{uuid.uuid4().hex}",
        model=request.model_id,
        message=message,
        usage=_usage(reply.last),
        finish_reason=reply.finish_reason,
    ).model_dump(mode="json")


async def generate(*, request: TextRequest) -> dict[str, Any]:
    reply = await _reply(request)
    # usage is final here (/ai/generate)
    return contract.AiGenerateResponse(
        id=f"gen-{uuid.uuid4().hex}",
        model=request.model_id,
        text=reply.text,
        finish_reason=reply.finish_reason,
        usage=_usage(reply.last),
    ).model_dump(mode="json")


async def chat_events_start(*, request: TextRequest) -> AsyncIterator[bytes]:
    """Start a streamed chat. Refusals (context too long, queue full, timeout before the first token) raise here,
    so they still get their HTTP status; later problems become an error event before [DONE]."""
    run = _run(request)
    try:
        first = await run.next()
    except StopAsyncIteration:
        await run.close()
        raise Problem("engine_error", "the model stopped without answering") from None
    except BaseException:
        await run.close()
        raise
    return _chat_events(request, run, first)


def _event(chunk: contract.AiChatChunk) -> bytes:
    return sse(chunk.model_dump(mode="json"))


async def _chat_events(request: TextRequest, run: serving.Run[TextChunk], first: TextChunk) -> AsyncIterator[bytes]:
    reader = serving.ReplyReader(model_id=request.model_id, use=request.tools)
    sent = 0  # tool calls already sent

    def calls() -> Iterator[bytes]:
        """Each complete call once, whole: the reader holds a call's pieces until it is complete anyway."""
        nonlocal sent
        for index, call in enumerate(reader.tool_calls()[sent:], start=sent):
            function = ToolCallFunction(name=call.name, arguments=call.arguments)
            delta = contract.AiDelta(tool_calls=[contract.AiStreamToolCall(index=index, id=call.id, function=function)])
            yield _event(contract.AiChatChunk(delta=delta))
        sent = len(reader.tool_calls())

    def events(pieces: list[ToolEvent]) -> Iterator[bytes]:
        for piece in pieces:
            if isinstance(piece, TextPiece) and piece.text:
                yield _event(contract.AiChatChunk(delta=contract.AiDelta(content=piece.text)))
            elif isinstance(piece, CallEnd):
                yield from calls()

    try:
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
                for data in calls():  # a call cut short by max_tokens, as far as it got
                    yield data
                # usage is final here (streamed /ai/chat)
                finish = _finish(reader.finish_reason(item.finish_reason))
                yield _event(contract.AiChatChunk(delta=contract.AiDelta(), finish_reason=finish, usage=_usage(item)))
                break
            try:
                item = await run.next()
            except StopAsyncIteration:
                item = None
    except Problem as exc:
        yield sse(contract.error_body(exc))
    finally:
        # Also on a client disconnect: Django cancels this generator and the engine stops within a token.
        await run.close()
    yield sse("[DONE]")


# --- embeddings ----------------------------------------------------------------------------------------------------


async def embeddings(*, body: dict[str, Any]) -> dict[str, Any]:
    """One text: {embedding, dimensions, usage}; a list: {embeddings, dimensions, usage}."""
    parsed = parse(contract.AiEmbeddingsRequest, body, where=contract.AiEmbeddingsRequest.where)
    spec = serving.model_for(model_id=parsed.model, tasks=("embeddings",), where=parsed.where)
    result = await serving.run_one(serving.embeddings_job(model_id=spec.id, texts=parsed.texts), param="input")
    # usage is final here (/ai/embeddings)
    usage = contract.AiEmbeddingUsage(total_tokens=result.usage.prompt_tokens)
    dimensions = len(result.vectors[0]) if result.vectors else 0
    answer: contract.AiEmbedding | contract.AiEmbeddings
    if isinstance(parsed.input, str):
        answer = contract.AiEmbedding(model=spec.id, embedding=result.vectors[0], dimensions=dimensions, usage=usage)
    else:
        answer = contract.AiEmbeddings(model=spec.id, embeddings=result.vectors, dimensions=dimensions, usage=usage)
    return answer.model_dump(mode="json")
