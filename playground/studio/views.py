"""The speech-to-text, embeddings and text-to-speech Playgrounds (speech-to-text streams over ws/speech/)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from inference import EngineError, ModelSpec
from playground import serving
from playground.projects.session import current_project
from playground.studio.forms import EmbeddingsForm, SpeechForm
from playground.studio.selectors import (
    embeddings_json_data_url,
    model_spec,
    playground_context,
    similarity_heatmap,
    vector_rows,
    wav_data_url,
)
from playground.studio.services import embeddings_create, speech_synthesize
from playground.usage.services import Caller, metered_as

TEMPLATES = {
    "speech-to-text": "studio/_stt.html",
    "embeddings": "studio/_embeddings.html",
    "text-to-speech": "studio/_tts.html",
}


def _spec(model_id: str, task: str) -> tuple[ModelSpec | None, str]:
    try:
        return serving.model_for(model_id=model_id, tasks=(task,), where=f"the {task} Playground"), ""
    except EngineError as exc:
        return None, str(exc)


def _errors(form: Form) -> list[str]:
    return [message for messages in form.errors.values() for message in messages]


def _render(request: HttpRequest, spec: ModelSpec | None, partial: str, context: dict[str, Any]) -> HttpResponse:
    """htmx gets the result partial; a plain form post gets the whole page back."""
    if request.headers.get("HX-Request"):
        return render(request, f"{TEMPLATES[context['task']]}#{partial}", context)
    if spec is None:
        raise Http404(context["errors"][0])
    return render(request, "studio/playground.html", {**context, **playground_context(spec=spec)})


def _caller(request: HttpRequest) -> Caller:
    return Caller(user=request.user, project_id=current_project(request).pk, source="playground", endpoint=request.path)


@login_required
@require_GET
def playground(request: HttpRequest, model_id: str) -> HttpResponse:
    """The Playground on a page of its own (the model card's Playground tab includes the same templates)."""
    try:
        spec = model_spec(model_id=model_id)
    except EngineError:
        raise Http404("no such model") from None
    if spec.task not in TEMPLATES:
        raise Http404("this model's Playground is the chat")
    context = {"spec": spec, "task": spec.task, **playground_context(spec=spec)}
    return render(request, "studio/playground.html", context)


@login_required
@require_POST
def embeddings(request: HttpRequest, model_id: str) -> HttpResponse:
    spec, error = _spec(model_id, "embeddings")
    form = EmbeddingsForm(request.POST)
    context: dict[str, Any] = {"spec": spec, "task": "embeddings", "embeddings_input": request.POST.get("input", "")}
    if error:
        context["errors"] = [error]
    elif not form.is_valid():
        context["errors"] = _errors(form)
    else:
        texts = form.cleaned_data["input"]
        try:
            with metered_as(
                Caller(
                    user=request.user,
                    project_id=current_project(request).pk,
                    source="playground",
                    endpoint=request.path,
                )
            ):
                result = embeddings_create(model_id=model_id, texts=texts)
        except EngineError as exc:
            context["errors"] = [str(exc)]
        else:
            context.update(
                vectors=vector_rows(texts=texts, vectors=result.vectors),
                heatmap=similarity_heatmap(texts=texts, vectors=result.vectors),
                json_url=embeddings_json_data_url(model_id=model_id, texts=texts, result=result),
                usage=result.usage,
            )
    return _render(request, spec, "embeddings-result", context)


@login_required
@require_POST
def speech(request: HttpRequest, model_id: str) -> HttpResponse:
    spec, error = _spec(model_id, "text-to-speech")
    form = SpeechForm(request.POST)
    context: dict[str, Any] = {
        "spec": spec,
        "task": "text-to-speech",
        "tts_input": request.POST.get("input", ""),
        "tts_speed": request.POST.get("speed", ""),
    }
    if error:
        context["errors"] = [error]
    elif not form.is_valid():
        context["errors"] = _errors(form)
    else:
        try:
            with metered_as(
                Caller(
                    user=request.user,
                    project_id=current_project(request).pk,
                    source="playground",
                    endpoint=request.path,
                )
            ):
                result = speech_synthesize(
                    model_id=model_id, text=form.cleaned_data["input"], speed=form.cleaned_data["speed"]
                )
        except EngineError as exc:
            context["errors"] = [str(exc)]
        else:
            context.update(speech=result, audio_url=wav_data_url(result.wav))
    return _render(request, spec, "tts-result", context)
