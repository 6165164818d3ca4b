"""The rules of a chat: conversations, turns, and recording each finished reply exactly once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from inference import ChatMessage, InvalidRequestError, Job, SamplingParams, TextChunk, Usage
from playground.chat.models import Conversation, Message
from playground.chat.selectors import conversation_history
from playground.serving import text_stream

TITLE_LENGTH = 60


def title_from(text: str) -> str:
    """A title from the first prompt: its first line, cut at a word near TITLE_LENGTH characters."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) <= TITLE_LENGTH:
        return line or "New conversation"
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0] or line[:TITLE_LENGTH]
    return cut + "…"


def conversation_create(
    *, user: AbstractBaseUser, model_id: str, system_prompt: str = "", title: str = ""
) -> Conversation:
    return Conversation.objects.create(user=user, model_id=model_id, system_prompt=system_prompt, title=title)


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


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
) -> Turn:
    """Save the user's message (creating the conversation on the first one) and build the history to send."""
    if not content.strip():
        raise InvalidRequestError("the message is empty")
    with transaction.atomic():
        if conversation is None:
            conversation = conversation_create(
                user=user, model_id=model_id, system_prompt=system_prompt, title=title_from(content)
            )
        else:
            conversation.model_id = model_id
            conversation.system_prompt = system_prompt
            conversation.save(update_fields=["model_id", "system_prompt", "updated_at"])
        Message.objects.create(conversation=conversation, role=Message.Role.USER, content=content)
    return Turn(conversation=conversation, history=conversation_history(conversation=conversation))


def turn_regenerate(*, conversation: Conversation, model_id: str, system_prompt: str | None = None) -> Turn:
    """Answer the last user message again; the reply after it (if any) is replaced when the new one is saved."""
    rows = list(conversation.messages.all())
    if not any(m.role == Message.Role.USER for m in rows):
        raise InvalidRequestError("there is no message to answer again")
    conversation.model_id = model_id
    fields = ["model_id", "updated_at"]
    if system_prompt is not None:
        conversation.system_prompt = system_prompt
        fields.append("system_prompt")
    conversation.save(update_fields=fields)
    last = rows[-1]
    return Turn(
        conversation=conversation,
        history=conversation_history(conversation=conversation, upto_last_user=True),
        replaces=last.pk if last.role == Message.Role.ASSISTANT else None,
    )


def reply_stream(
    *, model_id: str, params: SamplingParams, messages: list[ChatMessage] | None = None, prompt: str = ""
) -> Job[TextChunk]:
    """Queue a reply on the model's worker (chat models take messages, completion models a prompt)."""
    return text_stream(model_id=model_id, params=params, messages=messages or (), prompt=prompt)


def params_json(params: SamplingParams) -> dict[str, Any]:
    data = asdict(params)
    data["stop"] = list(params.stop)
    return data


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
) -> Message | None:
    """Record one finished (or cut short) reply, exactly once: the saved message with the speed the meter
    measured (the meter itself folds that speed into the model's card).

    A chat reply is saved in its conversation with its parameters, usage, metrics and finish reason;
    a completion (no turn) is not saved. Billing and the card are the meter's (playground/usage/services.py).
    """
    message = None
    if turn is not None:
        with transaction.atomic():
            if turn.replaces is not None:
                Message.objects.filter(pk=turn.replaces, conversation=turn.conversation).delete()
            message = Message.objects.create(
                conversation=turn.conversation,
                role=Message.Role.ASSISTANT,
                content=text,
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
