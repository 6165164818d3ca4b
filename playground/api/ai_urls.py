"""The unified-inference dialect, mounted at /ai/ (see ai_views)."""

from django.urls import URLPattern, path, re_path

from playground.api import ai_views

urlpatterns: list[URLPattern] = [
    path("models", ai_views.models, name="ai-models"),
    path("chat", ai_views.chat, name="ai-chat"),
    path("generate", ai_views.generate, name="ai-generate"),
    path("embeddings", ai_views.embeddings, name="ai-embeddings"),
    re_path(r"^(?P<path>.*)$", ai_views.not_found),
]
