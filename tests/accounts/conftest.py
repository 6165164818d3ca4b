"""The token tests' clean cache (failure counters and bans must not leak between tests) and movable clock."""

from tests.tokens.conftest import FakeClock, clean_cache, clock  # noqa: F401
