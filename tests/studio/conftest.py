"""Fixtures for the studio Playgrounds: a logged-in session cookie and a WebSocket app with auth."""

from __future__ import annotations

import pytest
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from playground.routing import websocket_urlpatterns


@pytest.fixture
def session_cookie(client, user) -> bytes:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def speech_socket(cookie: bytes | None = None) -> WebsocketCommunicator:
    app = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
    headers = [(b"cookie", cookie)] if cookie else []
    return WebsocketCommunicator(app, "/ws/speech/", headers=headers)
