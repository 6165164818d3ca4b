"""Text generation for the site: pick chat or completion by the model's task, run it on its worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import transaction

from inference import ChatMessage, Job, SamplingParams, TextChunk
from inference.types import InvalidRequestError, TextResult
from playground import engines
from playground.catalog.models import ModelStats
from playground.usage.services import metering_for


def sampling_params(*, model_id: str, overrides: dict[str, Any]) -> SamplingParams:
    """The model's catalog defaults, then the caller's values; validated by SamplingParams."""
    spec = engines.get_pool().spec(model_id)
    values: dict[str, Any] = {**spec.defaults, **{k: v for k, v in overrides.items() if v is not None}}
    if "stop" in values:
        values["stop"] = tuple(values["stop"])
    return SamplingParams(**values)


def text_stream(
    *,
    model_id: str,
    params: SamplingParams,
    messages: Sequence[ChatMessage] = (),
    prompt: str = "",
    background: bool = False,
) -> Job[TextChunk]:
    """Queue a generation; iterate the job for chunks. A chat model takes messages, a completion model a prompt.

    Background (bulk) generations wait behind every interactive request for the same model.
    """
    pool = engines.get_pool()
    spec = pool.spec(model_id)
    if spec.task == "text-to-text":
        if not messages:
            if not prompt:
                raise InvalidRequestError("a chat model needs messages")
            messages = [ChatMessage("user", prompt)]

        def run(engine: Any, stop: threading.Event) -> Iterator[TextChunk]:
            return engine.chat(messages, params, stop)

    elif spec.task == "text-completion":
        if not prompt:
            raise InvalidRequestError("a completion model needs a prompt")

        def run(engine: Any, stop: threading.Event) -> Iterator[TextChunk]:
            return engine.complete(prompt, params, stop)

    else:
        raise InvalidRequestError(f"the model {model_id!r} does not generate text")
    return pool.submit(model_id, run, metering_for(model_id=model_id), background=background)


def text_generate(
    *, model_id: str, params: SamplingParams, messages: Sequence[ChatMessage] = (), prompt: str = ""
) -> TextResult:
    """Generate a whole reply (blocking)."""
    chunks = text_stream(model_id=model_id, params=params, messages=messages, prompt=prompt).result()
    last = chunks[-1]
    assert last.finish_reason is not None and last.usage is not None  # the engine contract
    return TextResult(text="".join(c.text for c in chunks), finish_reason=last.finish_reason, usage=last.usage)


EMA_WEIGHT = 0.2  # each new request moves the shown speed 20% of the way


def _ema(old: float | None, new: float) -> float:
    return new if old is None else old + EMA_WEIGHT * (new - old)


def model_stats_record(
    *,
    model_id: str,
    tokens_per_second: float | None = None,
    ttft_seconds: float | None = None,
    real_time_factor: float | None = None,
) -> None:
    """Fold one real request's measured speed into the model's card (Overview tab)."""
    with transaction.atomic():
        stats, _ = ModelStats.objects.select_for_update().get_or_create(model_id=model_id)
        if tokens_per_second is not None or ttft_seconds is not None:
            stats.text_samples += 1
            if tokens_per_second is not None:
                stats.tokens_per_second = _ema(stats.tokens_per_second, tokens_per_second)
            if ttft_seconds is not None:
                stats.ttft_ms = _ema(stats.ttft_ms, ttft_seconds * 1000)
        if real_time_factor is not None:
            stats.speech_samples += 1
            stats.real_time_factor = _ema(stats.real_time_factor, real_time_factor)
        stats.save()
