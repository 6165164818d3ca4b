"""Reading conversations: always through the owner, so another user's rows are never reachable."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from inference import ChatMessage, ModelSpec
from inference.types import ToolCall
from playground import engines
from playground.chat.models import Conversation, Message


def conversation_list(*, user: AbstractBaseUser) -> QuerySet[Conversation]:
    """The user's conversations, most recently active first."""
    return Conversation.objects.filter(user=user)


def conversation_get(*, user: AbstractBaseUser, conversation_id: int) -> Conversation:
    """The user's conversation; raises Conversation.DoesNotExist for anyone else's (or a missing one)."""
    return Conversation.objects.get(user=user, pk=conversation_id)


def conversation_history(*, conversation: Conversation, upto_last_prompt: bool = False) -> list[ChatMessage]:
    """The messages to send the model: system prompt, then the turns in order, exactly as they were.

    An assistant reply carries its tool calls and each tool result its call's id. Empty replies (stopped before
    their first token) are left out; a reply that only called tools is kept. With `upto_last_prompt` the history
    ends at the last user message or tool result (what a regenerated reply answers).
    """
    rows = list(conversation.messages.all())
    if upto_last_prompt:
        last = max((i for i, m in enumerate(rows) if m.role != Message.Role.ASSISTANT), default=-1)
        rows = rows[: last + 1]
    history = [ChatMessage("system", conversation.system_prompt)] if conversation.system_prompt.strip() else []
    for m in rows:
        if m.role == Message.Role.TOOL:
            history.append(ChatMessage("tool", m.content, tool_call_id=m.tool_call_id))
        elif m.role == Message.Role.ASSISTANT and m.tool_calls:
            calls = tuple(ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"]) for c in m.tool_calls)
            history.append(ChatMessage("assistant", m.content, tool_calls=calls))
        elif m.content:
            history.append(ChatMessage(m.role, m.content))  # type: ignore[arg-type]
    return history


def text_models(*, task: str = "text-to-text") -> list[tuple[str, str]]:
    """(id, name) of every catalog model for a task, for the model picker."""
    return [(spec.id, spec.name) for spec in engines.get_pool().specs.values() if spec.task == task]


RECENT_CONVERSATIONS = 20


def playground_context(*, user: AbstractBaseUser, spec: ModelSpec, conversation_id: str | int | None) -> dict[str, Any]:
    """What the Playground templates need beyond the panel: the open conversation and the recent ones.

    A conversation id that is not one of the user's (or not a number) is a 404, like every conversation URL;
    a completion model has no conversations.
    """
    if spec.task != "text-to-text":
        return {"conversation": None, "conversations": [], "chat_messages": []}
    conversation = None
    if conversation_id not in (None, ""):
        try:
            conversation = conversation_get(user=user, conversation_id=int(conversation_id))
        except (ValueError, TypeError, Conversation.DoesNotExist):
            raise Http404("no such conversation") from None
    recent = list(conversation_list(user=user)[:RECENT_CONVERSATIONS])
    return {"conversation": conversation, "conversations": recent, "chat_messages": conversation_messages(conversation)}


def conversation_messages(conversation: Conversation | None) -> list[Message]:
    """The conversation's messages for display; each tool result knows the name of the function it answers
    (`tool_name`, from the call in the reply before it)."""
    if conversation is None:
        return []
    names: dict[str, str] = {}
    rows = list(conversation.messages.all())
    for message in rows:
        for call in message.tool_calls or []:
            if isinstance(call, dict):
                names[str(call.get("id"))] = str(call.get("name", ""))
        message.tool_name = names.get(message.tool_call_id, "")  # type: ignore[attr-defined]
    return rows
