"""A pool of fake engines with two chat models, so that panes can compare different models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from inference import EnginePool, ModelSpec
from inference.device import DeviceDecision
from playground import engines
from tests.conftest import FAKE_SPECS

SECOND_CHAT = ModelSpec(
    id="fake-chat-2",
    name="Fake Chat Two",
    task="text-to-text",
    engine="fake",
    path=Path("/nonexistent/fake-chat-2.gguf"),
    n_ctx=1024,
    defaults={"temperature": 0.9, "max_tokens": 32},
    prices={"input_per_million_tokens": 2.0, "output_per_million_tokens": 4.0},
)


@pytest.fixture
def compare_pool() -> Iterator[EnginePool]:
    """The site's fake pool plus a second chat model (priced, so that its replies cost something)."""
    pool = EnginePool(
        [*FAKE_SPECS, SECOND_CHAT], device=DeviceDecision("cpu", "tests use fake engines"), threads=1, max_queue=100
    )
    engines.set_pool(pool)
    yield pool
    engines.set_pool(None)


def session_cookie(user) -> bytes:  # noqa: ANN001
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.fixture
def cookie(user) -> bytes:  # noqa: ANN001
    return session_cookie(user)


@pytest.fixture
def other_cookie(other_user) -> bytes:  # noqa: ANN001
    return session_cookie(other_user)
