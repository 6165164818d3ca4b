"""Reads over the usage ledger: totals, breakdowns and a per-day series for one user (or everyone) and period."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from playground.projects.models import Project
from playground.usage.models import UsageRecord

RECENT_LIMIT = 50
ZERO = Decimal("0")
SOURCE_LABELS = dict(UsageRecord.Source.choices)


def usage_records(
    *,
    user: AbstractBaseUser | None = None,
    project: Project | None = None,
    start: date,
    end: date,
    model_id: str | None = None,
) -> QuerySet[UsageRecord]:
    """Records created on days start..end inclusive (in the current time zone), of one user and/or one project
    (None: any)."""
    records = UsageRecord.objects.filter(created_at__date__gte=start, created_at__date__lte=end)
    if user is not None:
        records = records.filter(user=user)
    if project is not None:
        records = records.filter(project=project)
    if model_id:
        records = records.filter(model_id=model_id)
    return records


def _sums() -> dict[str, Any]:
    return {
        "requests": Count("id"),
        "prompt_tokens": Coalesce(Sum("prompt_tokens"), Value(0)),
        "completion_tokens": Coalesce(Sum("completion_tokens"), Value(0)),
        "audio_seconds": Sum("audio_seconds"),
        "characters": Coalesce(Sum("characters"), Value(0)),
        "cost": Sum("cost"),
    }


def _tidy(row: dict[str, Any]) -> dict[str, Any]:
    """Fill the derived columns; Sum of an empty set is None, and Decimal sums stay Decimal."""
    row["audio_seconds"] = Decimal(row.get("audio_seconds") or ZERO)
    row["cost"] = Decimal(row.get("cost") or ZERO)
    row["tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    row["audio_minutes"] = row["audio_seconds"] / Decimal(60)
    return row


def usage_summary(
    *,
    user: AbstractBaseUser | None = None,
    project: Project | None = None,
    start: date,
    end: date,
    model_id: str | None = None,
) -> dict[str, Any]:
    """Totals, breakdowns (model, API token, source), a gap-free per-day series and the latest records."""
    records = usage_records(user=user, project=project, start=start, end=end, model_id=model_id)
    totals = _tidy(records.aggregate(**_sums()))

    by_model = [_tidy(row) for row in records.values("model_id").annotate(**_sums()).order_by("-cost", "model_id")]

    by_token = []
    token_rows = records.values("token_id", "token__label", "token__prefix").annotate(**_sums())
    for row in token_rows.order_by("-cost", "token_id"):
        if row["token_id"] is None:
            row["label"] = "Playground"
        else:
            row["label"] = f"{row['token__label']} ({row['token__prefix']}…)"
        by_token.append(_tidy(row))

    by_source = []
    for row in records.values("source").annotate(**_sums()).order_by("-cost", "source"):
        row["label"] = SOURCE_LABELS.get(row["source"], row["source"]).capitalize()
        by_source.append(_tidy(row))

    per_day_rows = {
        row["day"]: _tidy(row)
        for row in records.annotate(day=TruncDate("created_at")).values("day").annotate(**_sums()).order_by("day")
    }
    per_day = []
    day = start
    while day <= end:
        row = per_day_rows.get(day) or _tidy({"requests": 0, "prompt_tokens": 0, "completion_tokens": 0})
        row["day"] = day
        per_day.append(row)
        day += timedelta(days=1)

    recent = list(records.select_related("token", "user").order_by("-created_at", "-id")[:RECENT_LIMIT])
    return {
        "start": start,
        "end": end,
        "model_id": model_id,
        "totals": totals,
        "by_model": by_model,
        "by_token": by_token,
        "by_source": by_source,
        "per_day": per_day,
        "recent": recent,
    }
