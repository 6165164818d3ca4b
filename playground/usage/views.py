"""The usage page (totals, breakdowns, per-day charts, recent requests, CSV export) and the pricing page."""

from __future__ import annotations

import csv
import hmac
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from inference import ModelSpec
from playground import engines
from playground.projects.models import Project
from playground.projects.services import project_personal
from playground.projects.session import current_project
from playground.tokens.selectors import token_limits_list
from playground.tokens.throttle import auth_failure_record, ban_message, ban_remaining, request_address
from playground.usage.forms import DEFAULT_DAYS, PERIOD_CHOICES, CalculatorForm, PeriodForm
from playground.usage.metrics import metrics_render
from playground.usage.pricing import PRICE_FIELDS, cost_of, price_at
from playground.usage.selectors import usage_records, usage_summary

CHART_WIDTH = 720
CHART_HEIGHT = 140
CHART_SERIES = (("requests", "Requests"), ("tokens", "Tokens"), ("cost", "Cost (USD)"))
TASK_LABELS = {
    "text-to-text": "Chat",
    "text-completion": "Completion",
    "embeddings": "Embeddings",
    "speech-to-text": "Speech to text",
    "text-to-speech": "Text to speech",
}
CSV_COLUMNS = (
    "created_at",
    "request_id",
    "user",
    "model_id",
    "task",
    "source",
    "endpoint",
    "token",
    "prompt_tokens",
    "completion_tokens",
    "estimated",
    "audio_seconds",
    "characters",
    "embedding_inputs",
    "ttft_ms",
    "latency_ms",
    "outcome",
    "cost",
)


def _subject(request: HttpRequest) -> tuple[AbstractBaseUser | None, Project | None, str]:
    """Whose usage to show (user, project, label): staff may pick `?user=<name>` or `?all=1`; everyone else only
    ever sees the session's current project, every member's usage in it (the parameters are ignored for them, so a
    guessed name reveals nothing)."""
    if request.user.is_staff:
        if request.GET.get("all"):
            return None, None, "all users"
        username = request.GET.get("user", "").strip()
        if username:
            return get_object_or_404(get_user_model(), username=username), None, username
    project = current_project(request)
    return None, project, f"project {project.name}"


def bar_chart(per_day: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Bar geometry for one per-day series, computed here so the template only places <rect>s."""
    values = [row[key] for row in per_day]
    peak = max(values, default=0) or 1
    slot = Decimal(CHART_WIDTH) / max(len(values), 1)
    bars = []
    for i, (row, value) in enumerate(zip(per_day, values, strict=True)):
        height = float(Decimal(value) / Decimal(peak) * CHART_HEIGHT)
        bars.append(
            {
                "x": f"{float(slot * i) + 1:.2f}",
                "y": f"{CHART_HEIGHT - height:.2f}",
                "width": f"{max(float(slot) - 2, 1):.2f}",
                "height": f"{height:.2f}",
                "day": row["day"],
                "value": value,
            }
        )
    return {"key": key, "bars": bars, "peak": max(values, default=0), "width": CHART_WIDTH, "height": CHART_HEIGHT}


@require_GET
@login_required
def usage(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(request.GET or None)
    start, end = form.span()
    subject, project, subject_label = _subject(request)
    summary = usage_summary(user=subject, project=project, start=start, end=end)
    context = {
        "form": form,
        "presets": PERIOD_CHOICES,
        "default_days": DEFAULT_DAYS,  # what a refused period falls back to (the page says so)
        "summary": summary,
        "charts": [(label, bar_chart(summary["per_day"], key)) for key, label in CHART_SERIES],
        "subject_label": subject_label,
        "all_users": subject is None and project is None,
        "show_user": project is not None and project.personal_of_id is None,  # a shared project: who did it
        "export_query": _export_query(request, start=start, end=end),
    }
    if request.headers.get("HX-Request"):
        return render(request, "usage/usage.html#report", context)
    # Each active token's limits and what is left of them now (not over the period: limits are about the present).
    # (staff looking at one user: that user's personal project's tokens)
    shown = project if subject is None else project_personal(user=subject)
    context["token_limits"] = [] if shown is None else token_limits_list(project=shown, active_only=True)
    context["subject_is_me"] = project is not None
    return render(request, "usage/usage.html", context)


def _export_query(request: HttpRequest, *, start: Any, end: Any) -> str:
    query = request.GET.copy()
    for name in ("period", "start", "end"):
        query.pop(name, None)
    query["start"], query["end"] = start.isoformat(), end.isoformat()
    return query.urlencode()


@require_GET
@login_required
def export_csv(request: HttpRequest) -> HttpResponse:
    start, end = PeriodForm(request.GET or None).span()
    subject, project, _ = _subject(request)
    records = (
        usage_records(user=subject, project=project, start=start, end=end)
        .select_related("user", "token")
        .order_by("created_at")
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-{start.isoformat()}-{end.isoformat()}.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for r in records.iterator():
        writer.writerow(
            [
                r.created_at.isoformat(),
                r.request_id,
                r.user.get_username(),
                r.model_id,
                r.task,
                r.source,
                r.endpoint,
                r.token.prefix if r.token else "",
                r.prompt_tokens,
                r.completion_tokens,
                int(r.estimated),
                f"{r.audio_seconds:f}",
                r.characters,
                r.embedding_inputs,
                "" if r.ttft_ms is None else r.ttft_ms,
                r.latency_ms,
                r.outcome,
                f"{r.cost:f}",
            ]
        )
    return response


def _plain(value: Decimal) -> str:
    """A price without trailing zeros or exponent: 0.02, 100, 0."""
    return f"{value.normalize():f}"


def _specs() -> dict[str, ModelSpec]:
    return dict(engines.get_pool().specs)


@require_GET
def pricing(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for spec in _specs().values():
        version = price_at(spec=spec, at=now)
        groups[spec.task].append({"spec": spec, "prices": [_plain(getattr(version, name)) for name in PRICE_FIELDS]})
    tasks = [
        {
            "task": task,
            "label": TASK_LABELS.get(task, task),
            "rows": rows,
            "form": CalculatorForm(specs=_task_specs(task), auto_id=f"id_{task}_%s"),
        }
        for task, rows in groups.items()
    ]
    return render(request, "usage/pricing.html", {"tasks": tasks})


def _task_specs(task: str) -> dict[str, ModelSpec]:
    return {model_id: spec for model_id, spec in _specs().items() if spec.task == task}


@require_GET
def pricing_calculate(request: HttpRequest) -> HttpResponse:
    """One estimate, priced server-side with Decimal at today's prices; returns just the result partial."""
    form = CalculatorForm(request.GET, specs=_specs())
    context: dict[str, Any] = {"calc_form": form}
    if form.is_valid():
        data = form.cleaned_data
        spec = form.spec()
        context["estimate"] = cost_of(
            price=price_at(spec=spec, at=timezone.now()),
            prompt_tokens=data["prompt_tokens"],
            completion_tokens=data["completion_tokens"],
            audio_seconds=data["audio_minutes"] * 60,
            characters=data["characters"],
        ).quantize(Decimal("0.00000001"))
        context["spec"] = spec
    # 200 even for bad input: htmx does not swap 4xx bodies, and the partial shows the form's errors.
    return render(request, "usage/pricing.html#calc-result", context)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: for a scraper holding PLAYGROUND_METRICS_TOKEN as a bearer token, or for staff."""
    address = request_address(request)
    if banned_for := ban_remaining(address=address):  # the API's failed-authentication ban holds here too
        message = ban_message(address=address, seconds=banned_for) + "\n"
        return HttpResponse(message, status=403, content_type="text/plain", headers={"Retry-After": str(banned_for)})
    expected = settings.PLAYGROUND_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    presented = scheme.lower() == "bearer" and bool(given.strip())
    token_ok = presented and bool(expected) and hmac.compare_digest(given.strip().encode(), expected.encode())
    if presented and not token_ok:  # a wrong token counts; no token at all does not
        auth_failure_record(address=address)
    if not token_ok and not (request.user.is_authenticated and request.user.is_staff):
        return HttpResponse("metrics need the metrics token or a staff login\n", status=403, content_type="text/plain")
    return HttpResponse(metrics_render(), content_type="text/plain; version=0.0.4; charset=utf-8")
