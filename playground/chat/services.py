"""The rules of a chat: conversations, turns, and recording each finished reply exactly once."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from inference import ChatMessage, InvalidRequestError, Job, SamplingParams, TextChunk, Usage
from inference.tools import ToolUse
from inference.types import ToolCall
from playground import serving
from playground.chat.models import Conversation, Message
from playground.chat.selectors import conversation_history
from playground.contract import openai as contract
from playground.contract.errors import Problem
from playground.contract.fields import parse

TITLE_LENGTH = 60


def title_from(text: str) -> str:
    """A title from the first prompt: its first line, cut at a word near TITLE_LENGTH characters."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) <= TITLE_LENGTH:
        return line or "New conversation"
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0] or line[:TITLE_LENGTH]
    return cut + "…"


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


TOOL_KEYS = ("tools", "tool_choice", "parallel_tool_calls", "response_format")


@dataclass(frozen=True)
class ToolSetup:
    """A turn's tools and reply format: as saved on the conversation, as the model uses them, and the sampling
    values with the grammar that holds the reply to them."""

    fields: dict[str, Any]  # TOOL_KEYS in OpenAI's shapes (absent: not set)
    use: ToolUse | None
    params: SamplingParams


def tools_prepare(*, model_id: str, params: SamplingParams, fields: Mapping[str, Any], chat: bool = True) -> ToolSetup:
    """Check a frame's tool fields exactly as /v1/chat/completions checks them and add their grammar to `params`.

    Builds grammars from JSON Schemas (slow for a big one): call it off the event loop. Raises Problem (a bad
    tool, tools beside a response_format, tools for a completion model).
    """
    parsed = parse(contract.PlaygroundTools, dict(fields), where="ws/chat")
    use = parsed.tool_use()
    if not chat and use is not None and use.tools:
        raise Problem("unsupported_parameter", "tools: a completion model cannot call tools", param="tools")
    grammar = serving.format_grammar(parsed.response_format)
    if grammar is not None:
        params = dataclasses.replace(params, grammar=grammar)
    params = serving.with_tools(params, model_id=model_id, use=use)
    saved = parsed.model_dump(mode="json", by_alias=True, exclude_none=True, include=set(TOOL_KEYS))
    return ToolSetup(fields=saved, use=use, params=params)


def _tools_save(conversation: Conversation, fields: Mapping[str, Any] | None) -> list[str]:
    """Put a turn's tool fields on the conversation (not saved here); the names of the changed columns."""
    if fields is None:
        return []
    conversation.tools = list(fields.get("tools") or [])
    conversation.tool_choice = fields.get("tool_choice")
    conversation.parallel_tool_calls = fields.get("parallel_tool_calls")
    conversation.response_format = fields.get("response_format")
    return list(TOOL_KEYS)


def conversation_create(
    *,
    user: AbstractBaseUser,
    model_id: str,
    system_prompt: str = "",
    title: str = "",
    tool_fields: Mapping[str, Any] | None = None,
) -> Conversation:
    conversation = Conversation(user=user, model_id=model_id, system_prompt=system_prompt, title=title)
    _tools_save(conversation, tool_fields)
    conversation.save()
    return conversation


@dataclass(frozen=True)
class Turn:
    """A reply about to be generated: where it goes and what the model is sent."""

    conversation: Conversation
    history: list[ChatMessage]
    replaces: int | None = None  # the reply a regenerate supersedes, deleted once the new one is saved


def turn_start(
    *,
    user: AbstractBaseUser,
    model_id: str,
    conversation: Conversation | None,
    system_prompt: str,
    content: str,
    tool_fields: Mapping[str, Any] | None = None,
) -> Turn:
    """Save the user's message (creating the conversation on the first one) and build the history to send.

    `tool_fields` (ToolSetup.fields), when given, replace the conversation's tools and reply format."""
    if not content.strip():
        raise InvalidRequestError("the message is empty")
    with transaction.atomic():
        if conversation is None:
            conversation = conversation_create(
                user=user,
                model_id=model_id,
                system_prompt=system_prompt,
                title=title_from(content),
                tool_fields=tool_fields,
            )
        else:
            conversation.model_id = model_id
            conversation.system_prompt = system_prompt
            changed = _tools_save(conversation, tool_fields)
            conversation.save(update_fields=["model_id", "system_prompt", "updated_at", *changed])
        Message.objects.create(conversation=conversation, role=Message.Role.USER, content=content)
    return Turn(conversation=conversation, history=conversation_history(conversation=conversation))


def turn_regenerate(
    *,
    conversation: Conversation,
    model_id: str,
    system_prompt: str | None = None,
    tool_fields: Mapping[str, Any] | None = None,
) -> Turn:
    """Answer the last user message (or tool results) again; the reply after it (if any) is replaced when the
    new one is saved."""
    rows = list(conversation.messages.all())
    if not any(m.role == Message.Role.USER for m in rows):
        raise InvalidRequestError("there is no message to answer again")
    conversation.model_id = model_id
    fields = ["model_id", "updated_at", *_tools_save(conversation, tool_fields)]
    if system_prompt is not None:
        conversation.system_prompt = system_prompt
        fields.append("system_prompt")
    conversation.save(update_fields=fields)
    last = rows[-1]
    return Turn(
        conversation=conversation,
        history=conversation_history(conversation=conversation, upto_last_prompt=True),
        replaces=last.pk if last.role == Message.Role.ASSISTANT else None,
    )


@dataclass(frozen=True)
class ToolResult:
    tool_call_id: str
    content: str


MAX_RESULT_LENGTH = 100_000
MAX_CALL_ID_LENGTH = 100  # Message.tool_call_id


def tool_results_parse(raw: object) -> list[ToolResult]:
    """A tool_result frame's `results`: [{"tool_call_id": str, "content": str}, ...] (Problem naming the field)."""
    if raw is None:
        raise Problem("missing_required_parameter", "results: the tool results are required", param="results")
    if not isinstance(raw, list) or not raw:
        raise Problem("invalid_parameter", "results must be a non-empty list of tool results", param="results")
    results = []
    for index, item in enumerate(raw):
        where = f"results[{index}]"
        if not isinstance(item, dict):
            raise Problem("invalid_parameter", f"{where} must be an object", param=where)
        unknown = sorted(set(item) - {"tool_call_id", "content"})
        if unknown:
            raise Problem(
                "unknown_parameter", f"{where}.{unknown[0]} is not a known field", param=f"{where}.{unknown[0]}"
            )
        call_id, content = item.get("tool_call_id"), item.get("content")
        if not isinstance(call_id, str) or not call_id:
            raise Problem(
                "missing_required_parameter",
                f"{where}.tool_call_id: the call's id is required",
                param=f"{where}.tool_call_id",
            )
        if len(call_id) > MAX_CALL_ID_LENGTH:
            raise Problem(
                "invalid_parameter",
                f"{where}.tool_call_id may be at most {MAX_CALL_ID_LENGTH} characters",
                param=f"{where}.tool_call_id",
            )
        if not isinstance(content, str):
            raise Problem("invalid_parameter", f"{where}.content must be a string", param=f"{where}.content")
        if len(content) > MAX_RESULT_LENGTH:
            raise Problem(
                "invalid_parameter",
                f"{where}.content may be at most {MAX_RESULT_LENGTH} characters (got {len(content)})",
                param=f"{where}.content",
            )
        results.append(ToolResult(tool_call_id=call_id, content=content))
    return results


def turn_tool_results(
    *,
    conversation: Conversation,
    model_id: str,
    results: Sequence[ToolResult],
    tool_fields: Mapping[str, Any] | None = None,
) -> Turn:
    """Save the results of the last reply's tool calls as tool messages and build the history to send.

    Each result answers one call of the conversation's last assistant message, once; together with any results
    already saved they must answer every call (as /v1 requires of a history). Problem naming the id otherwise.
    """
    with transaction.atomic():
        # Lock the conversation first, so two frames answering the same calls are checked one after the other.
        Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        rows = list(conversation.messages.all())
        last = max((i for i, m in enumerate(rows) if m.role == Message.Role.ASSISTANT), default=-1)
        reply = rows[last] if last >= 0 else None
        after = rows[last + 1 :]
        calls = {c["id"]: c["name"] for c in (reply.tool_calls or [])} if reply is not None else {}
        if after and any(m.role != Message.Role.TOOL for m in after):
            calls = {}  # the conversation has moved on: nothing waits for a result
        answered = {m.tool_call_id for m in after}
        seen: set[str] = set()
        for index, result in enumerate(results):
            param = f"results[{index}].tool_call_id"
            if result.tool_call_id not in calls:
                raise Problem(
                    "invalid_parameter",
                    f"{param}: {result.tool_call_id!r} is not a call of the conversation's last reply",
                    param=param,
                )
            if result.tool_call_id in answered or result.tool_call_id in seen:
                raise Problem(
                    "invalid_parameter", f"{param}: the call {result.tool_call_id!r} already has a result", param=param
                )
            seen.add(result.tool_call_id)
        missing = [call_id for call_id in calls if call_id not in answered | seen]
        if missing:
            raise Problem(
                "missing_required_parameter",
                f"results: the call {missing[0]!r} ({calls[missing[0]]}) has no result; answer every call of the reply",
                param="results",
            )
        for result in results:
            Message.objects.create(
                conversation=conversation,
                role=Message.Role.TOOL,
                content=result.content,
                tool_call_id=result.tool_call_id,
            )
        conversation.model_id = model_id
        conversation.save(update_fields=["model_id", "updated_at", *_tools_save(conversation, tool_fields)])
    return Turn(conversation=conversation, history=conversation_history(conversation=conversation))


def reply_stream(
    *,
    model_id: str,
    params: SamplingParams,
    messages: list[ChatMessage] | None = None,
    prompt: str = "",
    tools: ToolUse | None = None,
) -> Job[TextChunk]:
    """Queue a reply on the model's worker (chat models take messages, completion models a prompt)."""
    return serving.text_stream(model_id=model_id, params=params, messages=messages or (), prompt=prompt, tools=tools)


def params_json(params: SamplingParams) -> dict[str, Any]:
    """The sampling values of a reply as saved with it (the grammar is not: the conversation's tools and reply
    format say what it was built from)."""
    data = asdict(params)
    data["stop"] = list(params.stop)
    data.pop("grammar", None)
    data.pop("grammar_trigger", None)
    return data


def calls_json(calls: Sequence[ToolCall]) -> list[dict[str, str]]:
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]


def reply_record(
    *,
    model_id: str,
    params: SamplingParams,
    text: str,
    finish_reason: str,
    usage: Usage,
    ttft_seconds: float | None,
    tokens_per_second: float | None,
    turn: Turn | None = None,
    tool_calls: Sequence[ToolCall] = (),
) -> Message | None:
    """Record one finished (or cut short) reply, exactly once: the saved message with the speed the meter
    measured (the meter itself folds that speed into the model's card).

    A chat reply is saved in its conversation with its parameters, usage, metrics, finish reason and tool calls
    (its text then without the whitespace around the calls); a completion (no turn) is not saved. Billing and
    the card are the meter's (playground/usage/services.py).
    """
    message = None
    if turn is not None:
        with transaction.atomic():
            if turn.replaces is not None:
                Message.objects.filter(pk=turn.replaces, conversation=turn.conversation).delete()
            message = Message.objects.create(
                conversation=turn.conversation,
                role=Message.Role.ASSISTANT,
                content=text.strip() if tool_calls else text,
                tool_calls=calls_json(tool_calls) or None,
                model_id=model_id,
                params=params_json(params),
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                ttft_ms=None if ttft_seconds is None else round(ttft_seconds * 1000, 1),
                tokens_per_second=None if tokens_per_second is None else round(tokens_per_second, 2),
                finish_reason=finish_reason,
            )
            Conversation.objects.filter(pk=turn.conversation.pk).update(updated_at=message.created_at)
    return message
