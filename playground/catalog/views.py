from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from inference import ModelSpec, UnknownModelError
from playground import engines
from playground.catalog.forms import SamplingForm
from playground.catalog.pricing import price_lines
from playground.catalog.selectors import (
    TASK_FILTERS,
    health_report,
    model_list,
    model_row,
    text_model_choices,
)
from playground.serving import TEXT_TASKS

TABS = (
    ("overview", "Overview"),
    ("playground", "Playground"),
    ("code", "Get Code"),
    ("api", "API"),
    ("usage", "Usage"),
    ("pricing", "Pricing"),
)
PLAYGROUND_TEMPLATES = {
    "text-to-text": "chat/_playground.html",
    "text-completion": "chat/_completion.html",
    "speech-to-text": "studio/_stt.html",
    "embeddings": "studio/_embeddings.html",
    "text-to-speech": "studio/_tts.html",
}
MAX_UPLOAD_MB = 25


@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    task = request.GET.get("task", "")
    query = request.GET.get("q", "")[:100]
    context = {
        "models": model_list(task=task, query=query),
        "device": engines.device_decision(),
        "filters": [(key, label) for key, (label, _) in TASK_FILTERS.items()],
        "task": task if task in TASK_FILTERS else "",
        "query": query,
    }
    template = "catalog/catalog.html#cards" if request.headers.get("HX-Request") else "catalog/catalog.html"
    return render(request, template, context)


def _tool_values(query: QueryDict, *, chat: bool) -> tuple[dict[str, Any], str]:
    """The Playground's tools and reply format from the query string (each a JSON text), checked as the socket and
    /v1 check them: (the fields in OpenAI's shapes, "") or ({}, what is wrong)."""
    from playground.catalog.snippets import TOOL_FIELDS
    from playground.contract import openai as contract
    from playground.contract.errors import Problem
    from playground.contract.fields import parse

    raw: dict[str, Any] = {}
    for name in TOOL_FIELDS if chat else ("response_format",):
        if query.get(name):
            try:
                raw[name] = json.loads(query[name])
            except ValueError:
                return {}, f"{name} is not valid JSON"
    if not raw:
        return {}, ""
    try:
        parsed = parse(contract.PlaygroundTools, raw, where="Get Code")
    except Problem as exc:
        return {}, str(exc)
    return parsed.model_dump(mode="json", by_alias=True, exclude_none=True), ""


def _code_values(request: HttpRequest, spec: ModelSpec) -> dict[str, Any]:
    """The parameters currently set in the Playground (sent in the query string), else the model's defaults."""
    if spec.task in TEXT_TASKS:
        form = SamplingForm(request.GET if "temperature" in request.GET else None, spec=spec)
        tools, problem = _tool_values(request.GET, chat=spec.task == "text-to-text")
        prompt = request.GET.get("content") or request.GET.get("prompt") or ""
        return {**form.as_query(), **tools, "prompt": prompt, "tools_problem": problem}
    if spec.task == "embeddings":
        texts = [t for t in request.GET.get("input", "").splitlines() if t.strip()]
        return {"input": texts}
    if spec.task == "text-to-speech":
        return {"input": request.GET.get("input", ""), "speed": request.GET.get("speed", "1.0")}
    return {"language": request.GET.get("language", ""), "task": request.GET.get("task", "transcribe")}


def _playground_context(request: HttpRequest, spec: ModelSpec) -> dict[str, Any]:
    context: dict[str, Any] = {"playground_template": PLAYGROUND_TEMPLATES[spec.task]}
    if spec.task in TEXT_TASKS:
        from playground.chat.selectors import playground_context

        context["params_form"] = SamplingForm(spec=spec)
        context["text_models"] = text_model_choices(spec.task)
        context.update(
            playground_context(user=request.user, spec=spec, conversation_id=request.GET.get("conversation"))
        )
    elif spec.task == "speech-to-text":
        from playground.studio.selectors import playground_context as speech_context

        context.update(speech_context(spec=spec))
    return context


@require_GET
def card(request: HttpRequest, model_id: str) -> HttpResponse:
    try:
        row = model_row(model_id)
    except UnknownModelError:
        raise Http404("no such model") from None
    spec = row.spec
    tab = request.GET.get("tab", "overview")
    if tab not in dict(TABS):
        tab = "overview"
    context: dict[str, Any] = {
        "row": row,
        "spec": spec,
        "tab": tab,
        "tabs": TABS,
        "price_lines": price_lines(spec),
        "max_queue": engines.get_pool().workers[spec.id].max_queue,
        "max_upload_mb": MAX_UPLOAD_MB,
    }
    if tab == "playground" and request.user.is_authenticated:
        context.update(_playground_context(request, spec))
    elif tab == "code":
        from playground.catalog.snippets import render_snippets

        base_url = request.build_absolute_uri("/").rstrip("/")
        values = _code_values(request, spec)
        context["tools_problem"] = values.pop("tools_problem", "")
        context["snippets"] = render_snippets(spec=spec, base_url=base_url, values=values)
        context["token_url"] = reverse("tokens:list")
    elif tab == "usage" and request.user.is_authenticated:
        from datetime import timedelta

        from django.utils import timezone

        from playground.usage.selectors import usage_summary

        end = timezone.localdate()
        context["usage"] = usage_summary(user=request.user, start=end - timedelta(days=29), end=end, model_id=spec.id)
    elif tab == "api":
        from playground.catalog.schemas import endpoint_schema

        context["schema"] = endpoint_schema(spec)
    return render(request, "catalog/card.html", context)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(health_report())
