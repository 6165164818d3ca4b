"""A conversation written out: OpenAI's messages (the JSON export, and Get Code's history) and Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.utils import timezone
from django.utils.text import slugify

from inference import ChatMessage
from playground.chat.models import Conversation, pretty_json
from playground.chat.selectors import conversation_history
from playground.contract import openai as contract


def openai_messages(turns: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Turns as OpenAI's chat messages, exactly as /v1/chat/completions takes them back: an assistant turn with
    its `tool_calls` (content null when it only called tools), a tool turn with its `tool_call_id`."""
    messages = []
    for turn in turns:
        message = contract.ChatMessage(
            role=turn.role,
            content=turn.content if turn.content or not turn.tool_calls else None,
            tool_calls=[
                contract.MessageToolCall(
                    id=call.id,
                    type="function",
                    function=contract.FunctionCall(name=call.name, arguments=call.arguments),
                )
                for call in turn.tool_calls
            ]
            or None,
            tool_call_id=turn.tool_call_id or None,
        )
        data = message.model_dump(mode="json", exclude_none=True)
        # OpenAI's shape: role and content first, and an assistant turn that only called tools has content null.
        messages.append({"role": data.pop("role"), "content": data.pop("content", None), **data})
    return messages


def export_filename(conversation: Conversation, extension: str) -> str:
    return f"{slugify(str(conversation))[:60] or 'conversation'}-{conversation.pk}.{extension}"


def conversation_export_json(*, conversation: Conversation) -> dict[str, Any]:
    """The conversation as a chat completions request would carry it (model, messages, tools and reply format as
    set), with what identifies it under `metadata`."""
    data: dict[str, Any] = {"model": conversation.model_id}
    data["messages"] = openai_messages(conversation_history(conversation=conversation))
    data.update({key: value for key, value in conversation.tool_fields().items() if value is not None})
    data["metadata"] = {
        "title": str(conversation),
        "conversation_id": conversation.pk,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "exported_at": timezone.now().isoformat(),
    }
    return data


def _fenced(text: str, language: str = "") -> str:
    """A fenced code block whose fence is longer than any run of backticks in the text."""
    longest, run = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def conversation_export_markdown(*, conversation: Conversation) -> str:
    """The conversation for reading: title, model, system prompt, then each turn under its role's heading (the
    text as written, Markdown already), tool calls and results as JSON blocks."""
    lines = [f"# {conversation}", "", f"- Model: `{conversation.model_id}`"]
    lines += [f"- Exported: {timezone.localtime().strftime('%Y-%m-%d %H:%M %Z')}", ""]
    if conversation.tools:
        functions = ", ".join(f"`{t.get('function', {}).get('name', '')}`" for t in conversation.tools)
        lines[-1:] = [f"- Tools: {functions}", ""]
    names: dict[str, str] = {}
    for turn in conversation_history(conversation=conversation):
        if turn.role == "system":
            lines += ["## System prompt", "", turn.content, ""]
        elif turn.role == "user":
            lines += ["## User", "", turn.content, ""]
        elif turn.role == "assistant":
            lines += ["## Assistant", ""]
            if turn.content:
                lines += [turn.content, ""]
            for call in turn.tool_calls:
                names[call.id] = call.name
                lines += [f"Calls `{call.name}` (`{call.id}`):", "", _fenced(pretty_json(call.arguments), "json"), ""]
        else:
            name = names.get(turn.tool_call_id, "")
            lines += [f"## Tool result{f' of `{name}`' if name else ''} (`{turn.tool_call_id}`)", ""]
            lines += [_fenced(pretty_json(turn.content), "json" if _is_json(turn.content) else ""), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
