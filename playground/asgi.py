"""ASGI entry point: HTTP and WebSocket, routed by Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
django_asgi_app = get_asgi_application()  # before importing anything that touches models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from playground import engines  # noqa: E402
from playground.bodylimit import BodyLimit, install_daphne_limit  # noqa: E402
from playground.routing import RefuseBanned, websocket_urlpatterns  # noqa: E402

install_daphne_limit()  # Daphne reads a whole body before the application sees it: refuse it before that
application = ProtocolTypeRouter(
    {
        # Static files served in the ASGI layer, so every middleware stays async-capable and no
        # request (a long API call included) is pushed onto a thread by a sync-only middleware.
        "http": BodyLimit(ASGIStaticFilesHandler(django_asgi_app)),
        # An engine node (PLAYGROUND_ROLE=engine) has no Playground, so no sockets.
        "websocket": RefuseBanned(
            AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns if settings.PLAYGROUND_ROLE == "web" else []))
            )
        ),
    }
)

if settings.PLAYGROUND_WARM_MODELS:
    engines.get_pool().warm()  # loads on each model's own worker thread; requests queue behind it

if settings.PLAYGROUND_BULK_WORKERS and settings.PLAYGROUND_ROLE == "web":
    from playground.bulk.worker import start_in_process  # noqa: E402

    start_in_process(settings.PLAYGROUND_BULK_WORKERS)
