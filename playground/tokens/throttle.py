"""Failed-authentication bans and the signup limit, per client address.

A failure is a credential that was presented and is wrong: an API token or a /metrics token that matches
nothing, a login (the site's or the admin's) with a wrong username or password. A request that presents
nothing is not one: a web page can make every visitor's browser request /v1/models, and those requests carry
no credential, so they must not ban the visitor's address (or the office behind it).

Per client address: AUTH_FAILURE_LIMIT failures within AUTH_FAILURE_WINDOW seconds ban the address for
AUTH_BAN_SECONDS; during the ban every API request, /metrics scrape, login and WebSocket handshake from it is
refused, even with a valid credential (as TGI documents it). An IPv6 address counts as its /64: one host
holds a whole /64 and can walk it, while IPv4 addresses are scarce enough to count one by one.

Counters live in Django's cache, so web processes share them when the cache is Redis.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

clock: Callable[[], float] = time.time  # tests replace this to move time

IPV6_PREFIX = 64  # the block one IPv6 host is given (RFC 6177): its addresses are banned together
SIGNUP_WINDOW = 3600  # PLAYGROUND_SIGNUP_PER_HOUR counts accounts created within this many seconds

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ip(value: str) -> Address | None:
    """The IP address in `value` (also `[v6]:port` and `v4:port`, as some proxies write it); None if none."""
    text = value.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # an IPv4 address with a port; an IPv6 address has at least two colons
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1 (a dual-stack socket)
    return address


@functools.lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """PLAYGROUND_TRUSTED_PROXIES parsed: each entry an address (one host) or a network in CIDR notation."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"PLAYGROUND_TRUSTED_PROXIES: {entry!r} is neither an IP address nor a network (10.0.0.0/8)"
            ) from None
    return tuple(networks)


def _trusted(value: str) -> bool:
    address = _ip(value)
    if address is None:
        return False
    return any(address in network for network in trusted_networks(tuple(settings.PLAYGROUND_TRUSTED_PROXIES)))


def client_address(*, peer: str, headers: Mapping[str, str]) -> str:
    """The socket address, unless it is a trusted proxy: then the right-most untrusted X-Forwarded-For entry
    (entries to its left are the client's to forge)."""
    if not _trusted(peer):
        return peer
    forwarded = [part.strip() for part in headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    for address in reversed(forwarded):
        if not _trusted(address):
            return address
    return peer


def request_address(request: HttpRequest) -> str:
    """The client address of an HTTP request."""
    return client_address(peer=request.META.get("REMOTE_ADDR", ""), headers=request.headers)


def scope_address(scope: Mapping[str, Any]) -> str:
    """The client address of an ASGI connection (a WebSocket handshake)."""
    client = scope.get("client") or ("", 0)
    forwarded = [value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"x-forwarded-for"]
    return client_address(peer=str(client[0]), headers={"X-Forwarded-For": ",".join(forwarded)})


def address_group(address: str) -> str:
    """What a ban or a count applies to: an IPv4 address, an IPv6 address's /64, or the text as given."""
    ip = _ip(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


def _key(kind: str, address: str) -> str:
    group = address_group(address)
    if _ip(address) is None:  # not an address (a proxy passed something odd): a key of safe characters
        group = "h-" + hashlib.sha256(group.encode()).hexdigest()[:32]
    return f"{kind}:{group}"


def ban_remaining(*, address: str) -> int:
    """Seconds the address stays banned (0 when it is not)."""
    until = cache.get(_key("auth-ban", address))
    if until is None:
        return 0
    left = int(until - clock() + 0.999)
    return max(left, 0)


def ban_message(*, address: str, seconds: int) -> str:
    """What a banned client is told, on every surface."""
    return f"too many failed authentication attempts from {address_group(address)}; banned for {seconds} more seconds"


@contextmanager
def _locked(key: str) -> Iterator[None]:
    """Serialize the read-modify-write of one counter across processes (cache.add is atomic: SET NX on
    Redis). A lock not had within half a second is not waited for: the event still counts."""
    lock = f"lock:{key}"
    for _ in range(50):
        if cache.add(lock, 1, timeout=5):
            try:
                yield
            finally:
                cache.delete(lock)
            return
        time.sleep(0.01)
    yield


def _recent(key: str, *, now: float, window: float) -> list[float]:
    return [t for t in cache.get(key, []) if now - t < window]


def auth_failure_record(*, address: str) -> bool:
    """Count one failed attempt (a credential presented and wrong); returns True when it starts a ban."""
    key = _key("auth-failures", address)
    with _locked(key):
        now = clock()
        window = settings.PLAYGROUND_AUTH_FAILURE_WINDOW
        failures = [*_recent(key, now=now, window=window), now]
        if len(failures) >= settings.PLAYGROUND_AUTH_FAILURE_LIMIT:
            ban = settings.PLAYGROUND_AUTH_BAN_SECONDS
            cache.set(_key("auth-ban", address), now + ban, timeout=ban + 1)
            cache.delete(key)
            return True
        cache.set(key, failures, timeout=window)
        return False


def signup_wait(*, address: str) -> int:
    """Seconds until the address may create another account (0: now), by PLAYGROUND_SIGNUP_PER_HOUR."""
    limit = settings.PLAYGROUND_SIGNUP_PER_HOUR
    if limit <= 0:
        return 0
    now = clock()
    recent = _recent(_key("signups", address), now=now, window=SIGNUP_WINDOW)
    if len(recent) < limit:
        return 0
    return max(int(sorted(recent)[-limit] + SIGNUP_WINDOW - now + 0.999), 1)


def signup_record(*, address: str) -> None:
    """Count one account created from the address."""
    key = _key("signups", address)
    with _locked(key):
        now = clock()
        cache.set(key, [*_recent(key, now=now, window=SIGNUP_WINDOW), now], timeout=SIGNUP_WINDOW)
