"""Failed-authentication throttling, as TGI documents it.

Per client address: AUTH_FAILURE_LIMIT failures within AUTH_FAILURE_WINDOW seconds ban the address for
AUTH_BAN_SECONDS; during the ban every API request from it is refused, even with a valid token. Counters
live in Django's cache, so web processes share them when the cache is Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

clock: Callable[[], float] = time.time  # tests replace this to move time


def client_address(*, peer: str, headers: Mapping[str, str]) -> str:
    """The socket address, unless it is a trusted proxy: then the right-most untrusted X-Forwarded-For entry."""
    trusted = set(settings.PLAYGROUND_TRUSTED_PROXIES)
    if peer not in trusted:
        return peer
    forwarded = [part.strip() for part in headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    for address in reversed(forwarded):
        if address not in trusted:
            return address
    return peer


def _failures_key(address: str) -> str:
    return f"auth-failures:{address}"


def _ban_key(address: str) -> str:
    return f"auth-ban:{address}"


def ban_remaining(*, address: str) -> int:
    """Seconds the address stays banned (0 when it is not)."""
    until = cache.get(_ban_key(address))
    if until is None:
        return 0
    left = int(until - clock() + 0.999)
    return max(left, 0)


@contextmanager
def _address_locked(address: str) -> Iterator[None]:
    """Serialize the read-modify-write of one address's failures across processes (cache.add is atomic:
    SET NX on Redis). A lock not had within half a second is not waited for: the failure still counts."""
    key = f"auth-lock:{address}"
    for _ in range(50):
        if cache.add(key, 1, timeout=5):
            try:
                yield
            finally:
                cache.delete(key)
            return
        time.sleep(0.01)
    yield


def auth_failure_record(*, address: str) -> bool:
    """Count one failed attempt; returns True when this failure starts a ban."""
    with _address_locked(address):
        now = clock()
        window = settings.PLAYGROUND_AUTH_FAILURE_WINDOW
        failures = [t for t in cache.get(_failures_key(address), []) if now - t < window]
        failures.append(now)
        if len(failures) >= settings.PLAYGROUND_AUTH_FAILURE_LIMIT:
            ban = settings.PLAYGROUND_AUTH_BAN_SECONDS
            cache.set(_ban_key(address), now + ban, timeout=ban + 1)
            cache.delete(_failures_key(address))
            return True
        cache.set(_failures_key(address), failures, timeout=window)
        return False
