"""The OpenAI-compatible API, mounted at /v1/ (see openai_views for the status codes)."""

from django.urls import URLPattern, path, re_path

from playground.api import openai_views

urlpatterns: list[URLPattern] = [
    path("models", openai_views.models, name="openai-models"),
    path("models/<path:model_id>", openai_views.model_detail, name="openai-model"),
    path("chat/completions", openai_views.chat_completions, name="openai-chat-completions"),
    path("completions", openai_views.completions, name="openai-completions"),
    path("embeddings", openai_views.embeddings, name="openai-embeddings"),
    path("audio/transcriptions", openai_views.transcriptions, name="openai-transcriptions"),
    path("audio/translations", openai_views.translations, name="openai-translations"),
    path("audio/speech", openai_views.speech, name="openai-speech"),
    re_path(r"^(?P<path>.*)$", openai_views.not_found),
]
