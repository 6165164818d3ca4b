"""Hugging Face TGI's routes, at the site root: the default text model, or any text model under /models/<id>/."""

from django.urls import URLPattern, path

from playground.api import tgi_views

urlpatterns: list[URLPattern] = [
    path("", tgi_views.root, name="tgi-root"),  # POST: TGI's compatibility route; GET: the catalog page
    path("generate", tgi_views.generate, name="tgi-generate"),
    path("generate_stream", tgi_views.generate_stream, name="tgi-generate-stream"),
    path("info", tgi_views.info, name="tgi-info"),
    path("models/<str:model_id>/generate", tgi_views.generate, name="tgi-model-generate"),
    path("models/<str:model_id>/generate_stream", tgi_views.generate_stream, name="tgi-model-generate-stream"),
    path("models/<str:model_id>/info", tgi_views.info, name="tgi-model-info"),
]
