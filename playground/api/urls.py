from django.urls import include, path

urlpatterns = [
    path("", include("playground.api.docs_urls")),  # first: /v1/openapi.json before /v1's catch-all
    path("v1/", include("playground.api.openai_urls")),
    path("ai/", include("playground.api.ai_urls")),  # the unified-inference dialect
    path("", include("playground.api.tgi_urls")),
]
