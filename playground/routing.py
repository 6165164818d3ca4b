"""WebSocket routes (the Playground's streaming consumers are added here), and the ban check for their handshakes."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from channels.security.websocket import WebsocketDenier
from django.urls import URLPattern, path

from playground.chat.consumers import ChatConsumer
from playground.compare.consumers import CompareConsumer
from playground.studio.consumers import SpeechConsumer
from playground.tokens.throttle import ban_remaining, scope_address

websocket_urlpatterns: list[URLPattern] = [
    path("ws/chat/", ChatConsumer.as_asgi()),
    path("ws/speech/", SpeechConsumer.as_asgi()),
    path("ws/compare/", CompareConsumer.as_asgi()),
]


class RefuseBanned:
    """ASGI middleware: a WebSocket handshake from an address banned for failed authentications is refused
    (HTTP 403) before the session is even looked up.

    A handshake records no failure of its own: its credential is the session cookie, a random key nobody can
    guess, and a cookie that names no session is what a tab left open after logging out (or after the session
    expired) sends when it reconnects; the consumers close such sockets, as they do anonymous ones."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and await sync_to_async(ban_remaining)(address=scope_address(scope)):
            return await WebsocketDenier()(scope, receive, send)
        return await self.inner(scope, receive, send)
