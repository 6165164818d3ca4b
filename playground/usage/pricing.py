"""Prices: versions per model, seeded from the catalog, and the cost of one record (Decimal, never float)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from inference import ModelSpec
from playground.usage.models import PriceVersion

CATALOG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # catalog defaults apply from "always"
MILLION = Decimal(1_000_000)
PRICE_FIELDS = (
    "input_per_million_tokens",
    "output_per_million_tokens",
    "per_audio_minute",
    "per_million_characters",
    "per_request",
)


def _catalog_version(spec: ModelSpec) -> PriceVersion:
    values = {name: Decimal(str(spec.prices.get(name, 0))) for name in PRICE_FIELDS}
    try:
        with transaction.atomic():
            return PriceVersion.objects.create(
                model_id=spec.id, effective_from=CATALOG_EPOCH, note="catalog default", **values
            )
    except IntegrityError:  # another process seeded it first
        return PriceVersion.objects.get(model_id=spec.id, effective_from=CATALOG_EPOCH)


def price_at(*, spec: ModelSpec, at: datetime) -> PriceVersion:
    """The version in force at `at` (the catalog's defaults when staff never set one)."""
    version = PriceVersion.objects.filter(model_id=spec.id, effective_from__lte=at).order_by("-effective_from").first()
    return version or _catalog_version(spec)


def cost_of(
    *,
    price: PriceVersion,
    prompt_tokens: int,
    completion_tokens: int,
    audio_seconds: Decimal,
    characters: int,
) -> Decimal:
    return (
        price.per_request
        + Decimal(prompt_tokens) * price.input_per_million_tokens / MILLION
        + Decimal(completion_tokens) * price.output_per_million_tokens / MILLION
        + audio_seconds / Decimal(60) * price.per_audio_minute
        + Decimal(characters) * price.per_million_characters / MILLION
    )
