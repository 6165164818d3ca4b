from django.contrib import admin
from django.urls import include, path

from playground.usage.urls import pricing_urlpatterns
from playground.usage.views import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("playground.accounts.urls")),
    path("chat/", include("playground.chat.urls")),
    path("studio/", include("playground.studio.urls")),
    path("tokens/", include("playground.tokens.urls")),
    path("usage/", include("playground.usage.urls")),
    path("bulk/", include("playground.bulk.urls")),
    path("pricing/", include((pricing_urlpatterns, "pricing"))),
    path("metrics", metrics, name="metrics"),
    path("", include("playground.api.urls")),
    path("", include("playground.catalog.urls")),
]
