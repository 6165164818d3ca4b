from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from playground.usage.urls import pricing_urlpatterns
from playground.usage.views import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("playground.accounts.urls")),
    path("chat/", include("playground.chat.urls")),
    path("presets/", include("playground.presets.urls")),
    path("studio/", include("playground.studio.urls")),
    path("tokens/", include("playground.tokens.urls")),
    path("usage/", include("playground.usage.urls")),
    path("bulk/", include("playground.bulk.urls")),
    path("compare/", include("playground.compare.urls")),
    path("projects/", include("playground.projects.urls")),
    path("endpoints/", include("playground.endpoints.urls")),
    path("project/p-<int:project_id>/endpoint/is-<int:endpoint_id>/v1/", include("playground.endpoints.api_urls")),
    path("pricing/", include((pricing_urlpatterns, "pricing"))),
    path("metrics", metrics, name="metrics"),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),  # for clients that ask
    path("", include("playground.api.urls")),
    path("", include("playground.catalog.urls")),
]

# templates/500.html, rendered without the request (a 404 is Django's own view with templates/404.html)
handler500 = "playground.accounts.views.server_error"
