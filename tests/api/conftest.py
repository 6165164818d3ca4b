"""Fixtures for the OpenAI-compatible API: a real token for the owner, and a clean failed-auth counter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache

from inference.speech import PiperEngine
from playground.tokens.services import token_create
from tests.livesite import REPO, live_api_token, live_site

FOX = "The quick brown fox jumps over the lazy dog."
SPANISH = REPO / "tests" / "fixtures" / "speech_es.ogg"


@pytest.fixture(autouse=True)
def _clear_auth_failures() -> Iterator[None]:
    """Failed-auth counters live in the cache; one test's 401s must not ban the next test's client."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def raw_token(user) -> str:
    _, raw = token_create(user=user, label="api tests")
    return raw


@pytest.fixture
def auth(raw_token: str) -> dict[str, Any]:
    """Keyword arguments for Django's AsyncClient: the Authorization header."""
    return {"headers": {"Authorization": f"Bearer {raw_token}"}}


def slow(pool: Any, model_id: str, delay: float) -> Any:
    """Give a model's fake engine a per-token delay (loading it first, before any job runs)."""
    worker = pool.workers[model_id]
    worker.load()
    worker.engine.delay = delay
    return worker.engine


@dataclass(frozen=True)
class LiveSite:
    base: str  # http://127.0.0.1:PORT
    token: str  # a real API token of the site's user
    workdir: Path


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """One Daphne with the real models for every live API test (the SDK tests and the snippet runs)."""
    workdir = tmp_path_factory.mktemp("api-site")
    with live_site(workdir) as base:
        yield LiveSite(base=base, token=live_api_token(workdir), workdir=workdir)


@pytest.fixture(scope="session")
def fox_wav() -> bytes:
    """English speech made by the real Piper voice (the same one the site serves)."""
    voice = PiperEngine(path=REPO / "var/models/piper-en-us-joe/en_US-joe-medium.onnx")
    return voice.synthesize(FOX).wav
