"""The URLs of an engine node (PLAYGROUND_ROLE=engine): the API dialects, /health and /metrics, nothing else."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from playground.api.http import error_response
from playground.catalog.views import health
from playground.contract.errors import Problem
from playground.usage.views import metrics

urlpatterns = [
    path("health", health, name="health"),
    path("metrics", metrics, name="metrics"),
    path("", include("playground.api.urls")),
]


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """No pages here: any other path is the API's own 404."""
    return error_response(Problem("unknown_url", f"no endpoint {request.path} on this engine node"), path=request.path)


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(Problem("engine_error", "the server failed; its log has the details"), path=request.path)


handler404 = not_found
handler500 = server_error
