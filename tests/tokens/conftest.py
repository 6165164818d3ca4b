"""Fixtures for the token tests: a clean cache (bans must not leak between tests) and a clock the tests move."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache

from playground.tokens import throttle


@pytest.fixture(autouse=True)
def clean_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


class FakeClock:
    """Stands in for time.time in the throttle; only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(throttle, "clock", fake)
    return fake
