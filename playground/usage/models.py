from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models

from playground.projects.models import personal_project_id

PRICE = {"max_digits": 14, "decimal_places": 6, "default": Decimal("0")}


class PriceVersion(models.Model):
    """One model's prices from a moment on. Rows are never edited: a price change adds a version."""

    model_id = models.CharField(max_length=200)
    effective_from = models.DateTimeField()
    input_per_million_tokens = models.DecimalField(**PRICE)
    output_per_million_tokens = models.DecimalField(**PRICE)
    per_audio_minute = models.DecimalField(**PRICE)
    per_million_characters = models.DecimalField(**PRICE)
    per_request = models.DecimalField(**PRICE)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_id", "-effective_from"]
        constraints = [models.UniqueConstraint(fields=["model_id", "effective_from"], name="one_price_per_instant")]

    def __str__(self) -> str:
        return f"{self.model_id} from {self.effective_from:%Y-%m-%d %H:%M}"


class UsageRecord(models.Model):
    """One inference, written exactly once (keyed by request_id), whatever its path and outcome."""

    class Source(models.TextChoices):
        API = "api"
        PLAYGROUND = "playground"
        BULK = "bulk"

    class Outcome(models.TextChoices):
        FINISHED = "finished"
        CANCELLED = "cancelled"
        TIMEOUT = "timeout"
        ERROR = "error"

    request_id = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_records")
    # The project it belongs to (the user above is who did it). Nullable only for the migration that filled it: save()
    # fills it when the caller names none.
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="usage_records"
    )
    project_id: int | None  # its column, for type checking
    token = models.ForeignKey(
        "tokens.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_records"
    )
    model_id = models.CharField(max_length=200)
    task = models.CharField(max_length=40)
    source = models.CharField(max_length=20, choices=Source.choices)
    endpoint = models.CharField(max_length=100)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    audio_seconds = models.DecimalField(max_digits=12, decimal_places=3, default=Decimal("0"))
    characters = models.PositiveIntegerField(default=0)
    # A remote model's upstream reported no usage and no tokenizer was at hand: the tokens are an estimate.
    estimated = models.BooleanField(default=False)
    embedding_inputs = models.PositiveIntegerField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(default=0)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    error = models.CharField(max_length=300, blank=True)
    price_version = models.ForeignKey(PriceVersion, on_delete=models.PROTECT, related_name="usage_records")
    cost = models.DecimalField(max_digits=18, decimal_places=10)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["model_id", "created_at"]),
            models.Index(fields=["token", "created_at"]),  # a token's limits sum its last minute, day and month
        ]

    def __str__(self) -> str:
        return f"{self.model_id} {self.endpoint} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.project_id is None:  # no project named: the token's, else the personal one
            self.project_id = self.token.project_id if self.token is not None else personal_project_id(self.user_id)
        super().save(*args, **kwargs)
