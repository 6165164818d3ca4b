"""Shared fixtures: users, and a pool of fake engines installed for every site test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inference import EnginePool, ModelSpec
from inference.device import DeviceDecision
from playground import engines

FAKE_SPECS = [
    ModelSpec(
        id="fake-chat",
        name="Fake Chat",
        task="text-to-text",
        engine="fake",
        path=Path("/nonexistent/fake-chat.gguf"),
        n_ctx=2048,
        defaults={"temperature": 0.5, "max_tokens": 64},
    ),
    ModelSpec(
        id="fake-completion",
        name="Fake Completion",
        task="text-completion",
        engine="fake",
        path=Path("/nonexistent/fake-completion.gguf"),
        n_ctx=2048,
    ),
    ModelSpec(id="fake-embed", name="Fake Embed", task="embeddings", engine="fake", path=Path("/nonexistent/e")),
    ModelSpec(id="fake-stt", name="Fake STT", task="speech-to-text", engine="fake", path=Path("/nonexistent/s")),
    ModelSpec(id="fake-tts", name="Fake TTS", task="text-to-speech", engine="fake", path=Path("/nonexistent/t")),
]


def make_fake_pool(max_queue: int = 100) -> EnginePool:
    return EnginePool(
        FAKE_SPECS, device=DeviceDecision("cpu", "tests use fake engines"), threads=1, max_queue=max_queue
    )


@pytest.fixture(autouse=True)
def _metering_only_where_tested(request: pytest.FixtureRequest, settings) -> None:  # noqa: ANN001
    """The ledger is written from model worker threads; SQLite's shared in-memory test database cannot
    serve those writes while a test's own transaction is open, so only tests marked `metering`
    (which use transactional_db) write usage records."""
    settings.PLAYGROUND_METERING = request.node.get_closest_marker("metering") is not None


@pytest.fixture
def fake_pool() -> Iterator[EnginePool]:
    """Install a pool of fake engines as the site's pool; tests can inspect `pool.workers[id].engine.calls`."""
    pool = make_fake_pool()
    engines.set_pool(pool)
    yield pool
    engines.set_pool(None)


@pytest.fixture
def user(django_user_model):  # noqa: ANN001
    return django_user_model.objects.create_user(username="owner", password="pw-owner-123!")


@pytest.fixture
def other_user(django_user_model):  # noqa: ANN001
    return django_user_model.objects.create_user(username="outsider", password="pw-outsider-123!")
