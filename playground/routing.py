"""WebSocket routes (the Playground's streaming consumers are added here)."""

from django.urls import URLPattern, path

from playground.chat.consumers import ChatConsumer
from playground.studio.consumers import SpeechConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/chat/", ChatConsumer.as_asgi()),
    path("ws/speech/", SpeechConsumer.as_asgi()),
]
