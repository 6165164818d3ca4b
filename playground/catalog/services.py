"""The model cards' measured speed (generation itself is playground/serving.py)."""

from __future__ import annotations

from django.db import transaction

from playground.catalog.models import ModelStats

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
