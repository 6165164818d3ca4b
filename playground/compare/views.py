"""The Compare page (the replies stream over ws/compare/: playground/compare/consumers.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from playground.compare.forms import MAX_PANES, MIN_PANES
from playground.compare.selectors import compare_models, compare_panes


@login_required
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    models = compare_models()
    try:
        shown = min(max(int(request.GET.get("panes", MIN_PANES)), MIN_PANES), MAX_PANES)
    except ValueError:
        shown = MIN_PANES
    context = {
        "models": models,
        "panes": compare_panes(models=models, shown=shown) if models else [],
        "min_panes": MIN_PANES,
        "max_panes": MAX_PANES,
    }
    return render(request, "compare/compare.html", context)
