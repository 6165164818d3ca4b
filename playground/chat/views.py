"""Conversation pages. The chat itself lives on the model card's Playground tab; these list and manage."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from playground import engines
from playground.chat import services
from playground.chat.exports import conversation_export_json, conversation_export_markdown, export_filename
from playground.chat.forms import ConversationRenameForm
from playground.chat.search import MAX_QUERY_LENGTH, conversation_search
from playground.chat.selectors import conversation_list, text_models
from playground.projects.session import current_project

PAGE_SIZE = 25


def playground_url(*, model_id: str, conversation_id: int | None = None) -> str:
    """The one chat page: the model card's Playground tab, optionally with a conversation open."""
    query = {"tab": "playground"}
    if conversation_id is not None:
        query["conversation"] = str(conversation_id)
    return f"{reverse('card', args=[model_id])}?{urlencode(query)}"


def _chat_model(requested: str | None, fallback: str | None = None) -> str:
    """The requested text-to-text model, else the fallback, else the first one in the catalog."""
    ids = [model_id for model_id, _ in text_models()]
    for candidate in (requested, fallback):
        if candidate and candidate in ids:
            return candidate
    if not ids:
        raise Http404("no chat model is configured")
    return ids[0]


@login_required
@require_GET
def conversation_index(request: HttpRequest) -> HttpResponse:
    """The user's conversations, searched by title and message text (`q`), a page at a time (`page`)."""
    query = request.GET.get("q", "")[:MAX_QUERY_LENGTH]
    page = Paginator(
        conversation_search(user=request.user, query=query, project=current_project(request)), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    names = {spec.id: spec.name for spec in engines.get_pool().specs.values()}
    rows = [(c, names.get(c.model_id, c.model_id)) for c in page]
    context = {"rows": rows, "page": page, "query": query.strip()}
    template = "chat/list.html#conversation-results" if request.headers.get("HX-Request") else "chat/list.html"
    return render(request, template, context)


@login_required
@require_GET
def conversation_new(request: HttpRequest) -> HttpResponseRedirect:
    return redirect(playground_url(model_id=_chat_model(request.GET.get("model"))))


@login_required
@require_GET
def conversation_open(request: HttpRequest, pk: int) -> HttpResponseRedirect:
    conversation = get_object_or_404(conversation_list(user=request.user), pk=pk)
    model_id = _chat_model(request.GET.get("model"), conversation.model_id)
    return redirect(playground_url(model_id=model_id, conversation_id=conversation.pk))


@login_required
@require_http_methods(["GET", "POST"])
def conversation_rename(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = get_object_or_404(conversation_list(user=request.user), pk=pk)
    form = ConversationRenameForm(request.POST or None, instance=conversation)
    if request.method == "POST" and form.is_valid():
        services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
        return redirect("chat:list")
    status = 400 if form.errors else 200
    return render(request, "chat/rename.html", {"form": form, "conversation": conversation}, status=status)


@login_required
@require_POST
def conversation_delete(request: HttpRequest, pk: int) -> HttpResponseRedirect:
    conversation = get_object_or_404(conversation_list(user=request.user), pk=pk)
    services.conversation_delete(conversation=conversation)
    return redirect("chat:list")


def _download(content: str, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def conversation_export_md(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = get_object_or_404(conversation_list(user=request.user), pk=pk)
    return _download(
        conversation_export_markdown(conversation=conversation),
        filename=export_filename(conversation, "md"),
        content_type="text/markdown; charset=utf-8",
    )


@login_required
@require_GET
def conversation_export_json_view(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = get_object_or_404(conversation_list(user=request.user), pk=pk)
    return _download(
        json.dumps(conversation_export_json(conversation=conversation), indent=2, ensure_ascii=False) + "\n",
        filename=export_filename(conversation, "json"),
        content_type="application/json; charset=utf-8",
    )
