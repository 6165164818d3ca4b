"""Reading conversations: always through the user's project memberships, so a non-member's rows are never
reachable."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from inference import ChatMessage, ModelSpec
from inference.types import ToolCall
from playground import engines
from playground.chat.models import Conversation, Message, Overflow
from playground.projects.models import Project
from playground.projects.selectors import project_ids


def conversation_list(*, user: AbstractBaseUser, project: Project | None = None) -> QuerySet[Conversation]:
    """The conversations of the user's projects (of one of them, given), most recently active first."""
    conversations = Conversation.objects.filter(project__in=project_ids(user=user))
    return conversations if project is None else conversations.filter(project=project)


def conversation_get(*, user: AbstractBaseUser, conversation_id: int) -> Conversation:
    """A conversation of one of the user's projects; raises Conversation.DoesNotExist for a non-member's (or a
    missing one)."""
    return Conversation.objects.get(project__in=project_ids(user=user), pk=conversation_id)


def conversation_path(*, conversation: Conversation, rows: list[Message] | None = None) -> list[Message]:
    """The messages of the branch shown, first to last: from the conversation's leaf up through each parent.

    `rows`: the conversation's messages, when already read. A conversation saved before branches existed (no
    parents, no leaf) is one line, in order; services chain such rows on their next change (`tree_chain`).
    """
    rows = list(conversation.messages.all()) if rows is None else rows
    if not rows:
        return []
    by_id = {m.pk: m for m in rows}
    leaf = by_id.get(conversation.leaf_id) if conversation.leaf_id is not None else None
    if leaf is None:
        if all(m.parent_id is None for m in rows):
            return rows
        leaf = descend(rows, None)
        if leaf is None:
            return []
    return ancestors(by_id, leaf)


def ancestors(by_id: dict[int, Message], message: Message) -> list[Message]:
    """`message` and the messages before it on its branch, first to last."""
    path: list[Message] = []
    seen: set[int] = set()
    node: Message | None = message
    while node is not None and node.pk not in seen:
        seen.add(node.pk)
        path.append(node)
        node = by_id.get(node.parent_id) if node.parent_id is not None else None
    return path[::-1]


def children_of(rows: list[Message]) -> dict[int | None, list[Message]]:
    """Each message's children (None: the conversation's first messages), oldest first."""
    children: dict[int | None, list[Message]] = {}
    for m in sorted(rows, key=lambda m: (m.created_at, m.pk)):
        children.setdefault(m.parent_id, []).append(m)
    return children


def descend(rows: list[Message], start: Message | None) -> Message | None:
    """The end of the branch through `start` (None: from the top): at each step the newest child, so a version
    picked again shows what was last said after it."""
    children = children_of(rows)
    node = start
    seen: set[int] = set()
    while True:
        below = children.get(node.pk if node is not None else None)
        if not below or (node is not None and node.pk in seen):
            return node
        if node is not None:
            seen.add(node.pk)
        node = below[-1]


def history_of(system_prompt: str, rows: list[Message]) -> list[ChatMessage]:
    """What the model is sent for these messages: the system prompt, then each turn exactly as it was.

    An assistant reply carries its tool calls and each tool result its call's id. Empty replies (stopped before
    their first token) are left out; a reply that only called tools is kept.
    """
    history = [ChatMessage("system", system_prompt)] if system_prompt.strip() else []
    for m in rows:
        if m.role == Message.Role.TOOL:
            history.append(ChatMessage("tool", m.content, tool_call_id=m.tool_call_id))
        elif m.role == Message.Role.ASSISTANT and m.tool_calls:
            calls = tuple(ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"]) for c in m.tool_calls)
            history.append(ChatMessage("assistant", m.content, tool_calls=calls))
        elif m.content:
            history.append(ChatMessage(m.role, m.content))  # type: ignore[arg-type]
    return history


def conversation_history(*, conversation: Conversation, upto_last_prompt: bool = False) -> list[ChatMessage]:
    """The messages to send the model for the branch shown (`history_of`). With `upto_last_prompt` the history
    ends at the last user message or tool result (what a regenerated reply answers)."""
    rows = conversation_path(conversation=conversation)
    if upto_last_prompt:
        last = max((i for i, m in enumerate(rows) if m.role != Message.Role.ASSISTANT), default=-1)
        rows = rows[: last + 1]
    return history_of(conversation.system_prompt, rows)


def text_models(*, task: str = "text-to-text") -> list[tuple[str, str]]:
    """(id, name) of every catalog model for a task, for the model picker."""
    return [(spec.id, spec.name) for spec in engines.get_pool().specs.values() if spec.task == task]


RECENT_CONVERSATIONS = 20


def playground_context(
    *, user: AbstractBaseUser, spec: ModelSpec, conversation_id: str | int | None, project: Project | None = None
) -> dict[str, Any]:
    """What the Playground templates need beyond the panel: the open conversation and the recent ones (of
    `project`, the session's current one, when given).

    A conversation id that is not one of the user's (or not a number) is a 404, like every conversation URL;
    a completion model has no conversations.
    """
    if spec.task != "text-to-text":
        return {"conversation": None, "conversations": [], "chat_messages": [], "overflow_choices": []}
    conversation = None
    if conversation_id not in (None, ""):
        try:
            conversation = conversation_get(user=user, conversation_id=int(conversation_id))
        except (ValueError, TypeError, Conversation.DoesNotExist):
            raise Http404("no such conversation") from None
    recent = list(conversation_list(user=user, project=project)[:RECENT_CONVERSATIONS])
    return {
        "conversation": conversation,
        "conversations": recent,
        "chat_messages": conversation_messages(conversation),
        "overflow_choices": Overflow.choices,
    }


def conversation_messages(conversation: Conversation | None) -> list[Message]:
    """The branch shown, for display. Each message knows its versions (`version_ids`: the ids of the messages
    with the same parent, oldest first, its own among them) and each tool result the name of the function it
    answers (`tool_name`, from the call in the reply before it)."""
    if conversation is None:
        return []
    rows = list(conversation.messages.all())
    children = children_of(rows)
    names: dict[str, str] = {}
    path = conversation_path(conversation=conversation, rows=rows)
    linear = conversation.leaf_id is None and all(m.parent_id is None for m in rows)
    for message in path:
        for call in message.tool_calls or []:
            if isinstance(call, dict):
                names[str(call.get("id"))] = str(call.get("name", ""))
        message.tool_name = names.get(message.tool_call_id, "")  # type: ignore[attr-defined]
        siblings = [message] if linear else children.get(message.parent_id, [message])
        message.version_ids = [m.pk for m in siblings]  # type: ignore[attr-defined]
    return path


def message_data(message: Message) -> dict[str, Any]:
    """A message as the socket's `path` frame carries it (`conversation_messages` set its versions and tool
    name); the page renders the same fields (chat/_message.html)."""
    return {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "tool_calls": list(message.tool_calls or []),
        "tool_call_id": message.tool_call_id,
        "tool_name": getattr(message, "tool_name", ""),
        "model_id": message.model_id,
        "usage": None
        if message.prompt_tokens is None
        else {"prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens or 0},
        "ttft_ms": message.ttft_ms,
        "tokens_per_second": message.tokens_per_second,
        "finish_reason": message.finish_reason,
        "dropped_messages": message.dropped_messages,
        "versions": list(getattr(message, "version_ids", [message.pk])),
    }
