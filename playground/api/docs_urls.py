"""The API's documentation. Both routes are open (no token)."""

from django.urls import URLPattern, path

from playground.api import docs_views

urlpatterns: list[URLPattern] = [
    path("v1/openapi.json", docs_views.openapi_json, name="openapi"),
    path("api/", docs_views.api_docs, name="api-docs"),
]
