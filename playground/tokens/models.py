from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from playground.projects.models import personal_project_id

# A spending cap in the ledger's currency units (UsageRecord.cost), to the micro-unit like the prices.
SPEND = {"max_digits": 14, "decimal_places": 6, "null": True, "blank": True}
SPEND_MIN = MinValueValidator(Decimal("0.000001"), "Must be more than 0; leave it empty for no cap.")


class ApiToken(models.Model):
    """An API token. Only the SHA-256 digest of the raw value is stored; the raw value is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    # The project it belongs to (the user above is who did it). Nullable only for the migration that filled it: save()
    # fills it when the caller names none.
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    project_id: int | None  # its column, for type checking
    label = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)  # shown in lists so a user can tell tokens apart
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Limits; empty means unlimited. Enforced by playground/tokens/limits.py on every API request.
    requests_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1, "Must be at least 1; leave it empty for no limit.")],
        help_text="Requests admitted in any 60 seconds. Empty: no limit.",
    )
    tokens_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1, "Must be at least 1; leave it empty for no limit.")],
        help_text="Prompt plus completion tokens of requests ended in the last 60 s. Empty: no limit.",
    )
    spend_per_day = models.DecimalField(
        **SPEND,
        validators=[SPEND_MIN],
        help_text="Spending cap per UTC day, in the ledger's currency (USD). Empty: no cap.",
    )
    spend_per_month = models.DecimalField(
        **SPEND,
        validators=[SPEND_MIN],
        help_text="Spending cap per UTC calendar month, in the ledger's currency (USD). Empty: no cap.",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label} ({self.prefix}…)"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.project_id is None:  # a caller that names no project: the creator's personal project
            self.project_id = personal_project_id(self.user_id)
        super().save(*args, **kwargs)

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"
