"""Compare: one prompt answered by several models (or parameter sets) side by side, what each reply cost, and a
reply continued as a normal chat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from inference import ChatMessage, Job, SamplingParams, TextChunk, Usage
from playground import engines, serving
from playground.chat import services as chat_services
from playground.chat.models import Conversation
from playground.projects.models import Project
from playground.usage.pricing import cost_of, price_at
from playground.usage.services import measured


def compare_messages(*, system: str, content: str) -> list[ChatMessage]:
    """What every pane sends its model: the shared system prompt (when there is one) and the message."""
    messages = [ChatMessage("system", system)] if system.strip() else []
    return [*messages, ChatMessage("user", content)]


def pane_stream(*, model_id: str, params: SamplingParams, messages: Sequence[ChatMessage]) -> Job[TextChunk]:
    """Queue one pane's reply on its model's worker, metered as the caller the consumer set."""
    return serving.text_stream(model_id=model_id, params=params, messages=messages)


def pane_cost(*, job: Job[Any], model_id: str, usage: Usage) -> Decimal:
    """The price of a reply's tokens: the cost the usage ledger recorded for it, or (metering off) the same
    price version and formula applied now (playground/usage/pricing.py)."""
    meter = measured(job)
    if meter is not None and meter.record is not None:
        return meter.record.cost
    price = price_at(spec=engines.get_pool().spec(model_id), at=timezone.now())
    return cost_of(
        price=price,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        audio_seconds=Decimal(0),
        characters=0,
    )


@dataclass(frozen=True)
class PaneReply:
    """A pane's finished (or stopped) reply, with what produced it: kept until the next compare so that it can be
    continued as a chat."""

    model_id: str
    params: SamplingParams
    text: str
    finish_reason: str
    usage: Usage
    ttft_seconds: float | None
    tokens_per_second: float | None


def pane_continue(
    *, user: AbstractBaseUser, system_prompt: str, content: str, reply: PaneReply, project: Project | None = None
) -> Conversation:
    """Save one pane's exchange as a new conversation of the user's (in `project`, default the personal one),
    exactly as the chat would have saved it: the pane's model, the system prompt, the message, and the reply with
    its parameters, usage and speed."""
    with transaction.atomic():
        turn = chat_services.turn_start(
            user=user,
            project=project,
            model_id=reply.model_id,
            conversation=None,
            system_prompt=system_prompt,
            content=content,
        )
        chat_services.reply_record(
            model_id=reply.model_id,
            params=reply.params,
            text=reply.text,
            finish_reason=reply.finish_reason,
            usage=reply.usage,
            ttft_seconds=reply.ttft_seconds,
            tokens_per_second=reply.tokens_per_second,
            turn=turn,
        )
    return turn.conversation
