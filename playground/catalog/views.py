from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from inference import ModelSpec, UnknownModelError
from playground import engines
from playground.catalog.forms import SamplingForm, panel_defaults, panel_initial
from playground.catalog.pricing import price_lines
from playground.catalog.selectors import (
    TASK_FILTERS,
    health_report,
    model_list,
    model_row,
    text_model_choices,
)
from playground.projects.session import current_project
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


CODE_STATES = {
    "playground": "the settings currently in the Playground",
    "remembered": "the settings of your latest reply from this model",
    "defaults": "the model's default settings",
}


def _chat_messages(request: HttpRequest, data: QueryDict, system: str, draft: str) -> tuple[list[dict[str, Any]], str]:
    """The messages the Playground would send now, in OpenAI's shape, and a note on the history they include.

    The system prompt as set, the open conversation's turns (the user's own: another's is a 404) and the draft;
    with no draft, the turns up to the last prompt (what Regenerate sends). A long history is cut to its latest
    turns, and the note says so."""
    from playground.catalog.snippets import DEFAULT_CHAT_PROMPT, history_window
    from playground.chat.exports import openai_messages
    from playground.chat.selectors import conversation_get, conversation_history, conversation_messages

    history: list[dict[str, Any]] = []
    dropped = 0
    conversation_id = data.get("conversation") or ""
    if conversation_id:
        if not request.user.is_authenticated:
            raise Http404("no such conversation")
        try:
            conversation = conversation_get(user=request.user, conversation_id=int(conversation_id))
        except (ValueError, TypeError, ObjectDoesNotExist):
            raise Http404("no such conversation") from None
        turns = conversation_history(conversation=conversation, upto_last_prompt=not draft)
        history = [m for m in openai_messages(turns) if m["role"] != "system"]
        # The Playground leaves out the oldest turns that do not fit the context, and /v1 refuses them: leave out
        # (at least) as many as the latest reply's prompt did, from a user message on.
        replies = [m for m in conversation_messages(conversation) if m.role == "assistant"]
        dropped = min(getattr(replies[-1], "dropped_messages", 0) or 0, len(history)) if replies else 0
        while dropped < len(history) and dropped and history[dropped]["role"] != "user":
            dropped += 1
        if dropped >= len(history):
            dropped = 0  # nothing would be left: send it all, and let the API say what does not fit
        history = history[dropped:]
    kept, left_out = history_window(history)
    messages = [{"role": "system", "content": system}] if system.strip() else []
    messages += kept
    if draft:
        messages.append({"role": "user", "content": draft})
    elif not kept:
        messages.append({"role": "user", "content": DEFAULT_CHAT_PROMPT})
        return messages, "The snippets ask an example question: write a message in the Playground to send yours."
    note = ""
    if left_out:
        note = (
            f"The conversation is long: the snippets include its latest {len(kept)} of {len(history) + dropped} "
            "messages, so the reply may differ from the Playground's."
        )
    elif history:
        count = f"{len(history)} message{'s' if len(history) != 1 else ''}"
        what = f"its latest {count}" if dropped else f"the conversation so far ({count})"
        note = f"The snippets include {what}" + (
            " and the message you are writing." if draft else ", up to its last prompt (what Regenerate sends)."
        )
        if dropped:
            note += (
                f" The {dropped} oldest are left out, as the Playground left them out of its latest reply's prompt "
                "to fit the model's context (the API refuses a conversation that does not fit)."
            )
    return messages, note


def _code_values(request: HttpRequest, spec: ModelSpec, data: QueryDict) -> dict[str, Any]:
    """The Playground's state as the snippets reproduce it: sent by the page (`data`, the query string or a POST
    from js/playground_state.js), else the settings of the user's latest reply from this model, else the
    model's defaults. `state` says which; `tools_problem` and `history_note` are for the page."""
    if spec.task in TEXT_TASKS:
        from playground.chat.forms import GenerateForm
        from playground.presets.selectors import last_settings_get

        chat = spec.task == "text-to-text"
        sent = "temperature" in data  # the page sends every field of the panel
        last = None if sent else last_settings_get(user=request.user, model_id=spec.id)
        if sent:
            state, form = "playground", SamplingForm(data, spec=spec)
        elif last is not None:
            state, form = "remembered", SamplingForm(panel_initial(spec, last.params), spec=spec)
        else:
            state, form = "defaults", SamplingForm(spec=spec)
        tools, problem = _tool_values(data, chat=chat)
        # No longer than the Playground sends (it refuses more), so a hostile post cannot make a huge page.
        limits = GenerateForm.base_fields
        draft = (data.get("content") or data.get("prompt") or "")[: limits["content"].max_length]
        draft = draft if draft.strip() else ""
        values = {**form.as_query(), **tools, "prompt": draft, "tools_problem": problem, "state": state}
        if chat:
            system = data.get("system", "")[: limits["system"].max_length] if last is None else last.system_prompt
            values["messages"], values["history_note"] = _chat_messages(request, data, system, draft)
        return values
    if spec.task == "embeddings":
        texts = [t for t in data.get("input", "").splitlines() if t.strip()]
        return {"input": texts}
    if spec.task == "text-to-speech":
        return {"input": data.get("input", ""), "speed": data.get("speed", "1.0")}
    return {"language": data.get("language", ""), "task": data.get("task", "transcribe")}


def _code_context(request: HttpRequest, spec: ModelSpec, data: QueryDict) -> dict[str, Any]:
    from playground.catalog.snippets import render_snippets

    base_url = request.build_absolute_uri("/").rstrip("/")
    values = _code_values(request, spec, data)
    state = values.pop("state", "")
    return {
        "spec": spec,
        "code_state": state,
        "code_state_text": CODE_STATES.get(state, ""),
        "tools_problem": values.pop("tools_problem", ""),
        "history_note": values.pop("history_note", ""),
        "snippets": render_snippets(spec=spec, base_url=base_url, values=values),
        "token_url": reverse("tokens:list"),
    }


def _conversation_params(messages: list[Any]) -> dict[str, Any] | None:
    """The parameters of the conversation's latest reply (as shown), or None when no reply has them."""
    for message in reversed(messages):
        if getattr(message, "is_assistant", False) and isinstance(message.params, dict):
            return message.params
    return None


def _playground_context(request: HttpRequest, spec: ModelSpec) -> dict[str, Any]:
    context: dict[str, Any] = {"playground_template": PLAYGROUND_TEMPLATES[spec.task]}
    if spec.task in TEXT_TASKS:
        from playground.chat.selectors import playground_context
        from playground.presets.selectors import last_settings_get, preset_list

        chat = playground_context(
            user=request.user,
            spec=spec,
            conversation_id=request.GET.get("conversation"),
            project=current_project(request),
        )
        context.update(chat)
        # A conversation reopens with the parameters of its latest reply; a new chat starts from the settings of
        # the user's latest reply from this model; else the catalog's defaults.
        last = last_settings_get(user=request.user, model_id=spec.id)
        params = _conversation_params(chat["chat_messages"]) if chat["conversation"] else None
        if params is None and last is not None and not chat["conversation"]:
            params = last.params
        context["params_form"] = SamplingForm(spec=spec, initial=panel_initial(spec, params or {}))
        context["panel_defaults"] = json.dumps(panel_defaults(spec))
        context["presets"] = list(preset_list(user=request.user))
        context["remembered_system"] = last.system_prompt if last is not None and not chat["conversation"] else ""
        context["text_models"] = text_model_choices(spec.task)
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
        "row_capacity": engines.get_pool().workers[spec.id].concurrency,
        "max_upload_mb": MAX_UPLOAD_MB,
    }
    if tab == "playground" and request.user.is_authenticated:
        context.update(_playground_context(request, spec))
    elif tab == "code":
        context.update(_code_context(request, spec, request.GET))
    elif tab == "usage" and request.user.is_authenticated:
        from datetime import timedelta

        from django.utils import timezone

        from playground.usage.selectors import usage_summary

        end = timezone.localdate()
        context["usage"] = usage_summary(
            project=current_project(request), start=end - timedelta(days=29), end=end, model_id=spec.id
        )
    elif tab == "api":
        from playground.catalog.schemas import endpoint_schema

        context["schema"] = endpoint_schema(spec)
    return render(request, "catalog/card.html", context)


@require_http_methods(["GET", "POST"])
def card_code(request: HttpRequest, model_id: str) -> HttpResponse:
    """The Get Code tab's snippets alone, for the Playground's state as js/playground_state.js posts it (a POST:
    a system prompt, draft and tool definitions can be longer than a URL may be)."""
    try:
        spec = engines.get_pool().spec(model_id)
    except UnknownModelError:
        raise Http404("no such model") from None
    data = request.POST if request.method == "POST" else request.GET
    return render(request, "catalog/_code.html", _code_context(request, spec, data))


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(health_report())
