"""A deployed endpoint's OpenAI-compatible routes (mounted at /project/p-<id>/endpoint/is-<id>/v1/)."""

from django.urls import URLPattern, path

from playground.endpoints import api_views

urlpatterns: list[URLPattern] = [
    path("models", api_views.models, name="endpoint-models"),
    path("chat/completions", api_views.chat_completions, name="endpoint-chat-completions"),
    path("completions", api_views.completions, name="endpoint-completions"),
    path("embeddings", api_views.embeddings, name="endpoint-embeddings"),
    path("audio/transcriptions", api_views.transcriptions, name="endpoint-transcriptions"),
    path("audio/translations", api_views.translations, name="endpoint-translations"),
    path("audio/speech", api_views.speech, name="endpoint-speech"),
]
