"""Failed-authentication bans and revocation/expiry, exercised through the real `api_view` decorator, and the
same bans on /metrics and WebSocket handshakes (the login pages: tests/accounts/test_throttling.py).

A tiny async view wrapped in `api_view` is called with AsyncRequestFactory (so a test can pick the socket address)
or, next to the site's own URLs in this module's URLconf, with the async test client. The throttle's clock is
replaced so a test can move time.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.test import AsyncRequestFactory, Client
from django.urls import path, reverse
from django.utils import timezone

from playground.api.auth import api_view
from playground.asgi import application
from playground.tokens.hashing import PREFIX
from playground.tokens.models import ApiToken
from playground.tokens.services import token_create
from playground.tokens.throttle import address_group, auth_failure_record, ban_remaining, client_address
from playground.urls import urlpatterns as site_urlpatterns


@api_view
async def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.api_user.username, "token": request.api_token.label})


urlpatterns = [*site_urlpatterns, path("test-api/whoami/", whoami, name="test-whoami")]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

WRONG = PREFIX + "x" * 43  # the right shape, but no such token
CLIENT = "198.51.100.20"


@pytest.fixture
def raw(user) -> str:
    return token_create(user=user, label="laptop")[1]


async def call(client, token: str | None, *, peer: str = CLIENT, forwarded: str | None = None):
    """One API request from `peer`: through the test client from its fixed address, else straight to the view."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    if peer == "127.0.0.1":
        return await client.get(reverse("test-whoami"), headers=headers)
    request = AsyncRequestFactory().get("/test-api/whoami/", headers=headers)
    request.META["REMOTE_ADDR"] = peer  # the factory always says 127.0.0.1
    return await whoami(request)


def body(response) -> dict:
    return json.loads(response.content)


def assert_error(response, *, status: int, type: str, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    error = body(response)["error"]
    assert {"message", "type", "code"} <= set(error)
    assert error["type"] == type and error["code"] == code and error["message"]


async def test_valid_token_reaches_the_view(async_client, raw, clock):
    response = await call(async_client, raw)
    assert response.status_code == 200
    assert body(response) == {"user": "owner", "token": "laptop"}


async def test_missing_or_wrong_token_is_401_with_the_error_json(async_client, clock):
    for token in (None, WRONG, "not-even-a-token"):
        response = await call(async_client, token)
        assert_error(response, status=401, type="authentication_error", code="invalid_api_key")
        assert response["WWW-Authenticate"] == "Bearer"


async def test_four_failures_still_401_and_the_fifth_bans_even_a_valid_token(async_client, raw, clock):
    for _ in range(4):
        assert (await call(async_client, WRONG)).status_code == 401
        clock.advance(10)
    assert (await call(async_client, raw)).status_code == 200  # four failures: not banned yet
    fifth = await call(async_client, WRONG)
    assert_error(fifth, status=401, type="authentication_error", code="invalid_api_key")

    banned = await call(async_client, raw)
    assert_error(banned, status=403, type="permission_error", code="banned")
    assert banned["Retry-After"] == "300"
    assert CLIENT in body(banned)["error"]["message"]


async def test_ban_lifts_after_ban_seconds(async_client, raw, clock):
    for _ in range(5):
        await call(async_client, WRONG)
    clock.advance(299)
    still = await call(async_client, raw)
    assert_error(still, status=403, type="permission_error", code="banned")
    assert still["Retry-After"] == "1"
    clock.advance(1)
    assert (await call(async_client, raw)).status_code == 200


async def test_a_lifted_ban_starts_counting_afresh(async_client, raw, clock):
    for _ in range(5):
        await call(async_client, WRONG)
    clock.advance(300)
    for _ in range(4):
        assert (await call(async_client, WRONG)).status_code == 401
    assert (await call(async_client, raw)).status_code == 200


async def test_failures_older_than_the_window_do_not_count(async_client, raw, clock):
    for _ in range(4):
        await call(async_client, WRONG)
    clock.advance(1800)  # the four fall out of the 30-minute window
    assert (await call(async_client, WRONG)).status_code == 401
    assert (await call(async_client, raw)).status_code == 200


async def test_failures_inside_the_window_do_count(async_client, raw, clock):
    for _ in range(4):
        await call(async_client, WRONG)
    clock.advance(1799)
    await call(async_client, WRONG)
    assert (await call(async_client, raw)).status_code == 403


async def test_settings_change_the_limit_window_and_ban(async_client, raw, clock, settings):
    settings.PLAYGROUND_AUTH_FAILURE_LIMIT = 2
    settings.PLAYGROUND_AUTH_FAILURE_WINDOW = 60
    settings.PLAYGROUND_AUTH_BAN_SECONDS = 10

    await call(async_client, WRONG)
    clock.advance(60)  # outside the shorter window: forgotten
    await call(async_client, WRONG)
    assert (await call(async_client, raw)).status_code == 200
    await call(async_client, WRONG)  # second failure inside the window
    banned = await call(async_client, raw)
    assert banned.status_code == 403 and banned["Retry-After"] == "10"
    clock.advance(10)
    assert (await call(async_client, raw)).status_code == 200


async def test_a_ban_is_per_address(async_client, raw, clock):
    for _ in range(5):
        await call(async_client, WRONG)
    assert (await call(async_client, raw)).status_code == 403
    assert (await call(async_client, raw, peer="198.51.100.21")).status_code == 200


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(async_client, raw, clock):
    # Rotating X-Forwarded-For must not dodge the ban: the socket address is what counts.
    for i in range(5):
        await call(async_client, WRONG, forwarded=f"203.0.113.{i}")
    assert (await call(async_client, raw, forwarded="203.0.113.99")).status_code == 403


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(async_client, raw, clock, settings):
    settings.PLAYGROUND_TRUSTED_PROXIES = ["10.0.0.1"]
    proxy = "10.0.0.1"
    for _ in range(5):
        await call(async_client, WRONG, peer=proxy, forwarded="203.0.113.7")
    banned = await call(async_client, raw, peer=proxy, forwarded="203.0.113.7")
    assert banned.status_code == 403 and "203.0.113.7" in body(banned)["error"]["message"]
    # Another client behind the same proxy, and the proxy itself, are not banned.
    assert (await call(async_client, raw, peer=proxy, forwarded="203.0.113.8")).status_code == 200
    assert (await call(async_client, raw, peer=proxy)).status_code == 200


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.1", "203.0.113.7", "198.51.100.1"),  # untrusted peer: header ignored
        ("10.0.0.1", "203.0.113.7", "203.0.113.7"),
        ("10.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # left entries are the client's to forge
        ("10.0.0.1", "203.0.113.7, 10.0.0.2", "203.0.113.7"),  # a chain of trusted proxies
        ("10.0.0.1", "10.0.0.2", "10.0.0.1"),  # nothing untrusted: the peer
        ("10.0.0.1", "", "10.0.0.1"),
    ],
)
def test_client_address_believes_forwarded_for_only_from_trusted_proxies(peer, forwarded, expected, settings):
    settings.PLAYGROUND_TRUSTED_PROXIES = ["10.0.0.1", "10.0.0.2"]
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert client_address(peer=peer, headers=headers) == expected


async def test_revocation_is_effective_on_the_very_next_request(async_client, user, clock):
    token, raw = await sync_to_async(token_create)(user=user, label="laptop")
    assert (await call(async_client, raw, peer="127.0.0.1")).status_code == 200
    await async_client.aforce_login(user)
    revoked = await async_client.post(reverse("tokens:revoke", args=[token.pk]))  # the page's Revoke button
    assert revoked.status_code == 302
    response = await call(async_client, raw, peer="127.0.0.1")
    assert_error(response, status=401, type="authentication_error", code="invalid_api_key")


async def test_expiry_is_enforced(async_client, user, clock):
    soon = timezone.now() + timedelta(hours=1)
    token, raw = await sync_to_async(token_create)(user=user, label="short-lived", expires_at=soon)
    assert (await call(async_client, raw)).status_code == 200
    await ApiToken.objects.filter(pk=token.pk).aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(await call(async_client, raw), status=401, type="authentication_error", code="invalid_api_key")


async def test_last_use_is_recorded_by_an_api_request(async_client, user, clock):
    token, raw = await sync_to_async(token_create)(user=user, label="laptop")
    await call(async_client, raw)
    await token.arefresh_from_db()
    assert token.last_used_at is not None


# --- Only a credential presented and wrong counts -------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer ", "Basic dXNlcjpwYXNz", "gp_no_scheme"])
async def test_requests_without_a_bearer_token_are_401_but_never_ban(async_client, raw, clock, header):
    # Five <img src=".../v1/models"> tags on any web page must not ban each visitor's address.
    for _ in range(20):
        request = AsyncRequestFactory().get("/test-api/whoami/", headers={"Authorization": header} if header else {})
        request.META["REMOTE_ADDR"] = CLIENT
        assert_error(await whoami(request), status=401, type="authentication_error", code="invalid_api_key")
    assert (await call(async_client, raw)).status_code == 200


async def test_missing_and_wrong_tokens_are_told_apart(async_client, clock):
    assert "missing API token" in body(await call(async_client, None))["error"]["message"]
    assert body(await call(async_client, WRONG))["error"]["message"] == "invalid API token"


# --- IPv6 by /64, IPv4 one by one -------------------------------------------------------------------------------


async def test_ipv6_failures_count_by_slash_64(async_client, raw, clock):
    for host in range(1, 6):  # five addresses of one /64: one attacker walking its own block
        await call(async_client, WRONG, peer=f"2001:db8:1:2::{host}")
    banned = await call(async_client, raw, peer="2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert_error(banned, status=403, type="permission_error", code="banned")
    assert "2001:db8:1:2::/64" in body(banned)["error"]["message"]
    assert (await call(async_client, raw, peer="2001:db8:1:3::1")).status_code == 200  # the next /64 is someone else


async def test_ipv4_neighbours_are_not_grouped(async_client, raw, clock):
    for host in range(1, 6):
        await call(async_client, WRONG, peer=f"198.51.100.{host}")
    for host in range(1, 7):
        assert (await call(async_client, raw, peer=f"198.51.100.{host}")).status_code == 200


async def test_an_ipv4_mapped_ipv6_peer_is_its_ipv4_address(async_client, raw, clock):
    for _ in range(5):
        await call(async_client, WRONG, peer=f"::ffff:{CLIENT}")
    assert (await call(async_client, raw)).status_code == 403


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:DB8:0:1::7", "2001:db8:0:1::/64"),
        ("[2001:db8::1]:443", "2001:db8::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("198.51.100.7:8080", "198.51.100.7"),
        ("unknown", "unknown"),
    ],
)
def test_address_group(address, group):
    assert address_group(address) == group


# --- Trusted proxies by network -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("10.1.2.3", "203.0.113.7", "203.0.113.7"),  # any address of 10.0.0.0/8 is a proxy
        ("10.1.2.3", "203.0.113.7, 10.200.0.1", "203.0.113.7"),  # a chain of proxies inside the network
        ("11.0.0.1", "203.0.113.7", "11.0.0.1"),  # outside it: the header is ignored
        ("2001:db8:ffff:1::5", "2001:db8:1:2::9", "2001:db8:1:2::9"),  # an IPv6 proxy network
        ("2001:db8:fffe::5", "203.0.113.7", "2001:db8:fffe::5"),
        ("192.0.2.1", "203.0.113.7", "203.0.113.7"),  # an exact address still works
        ("::ffff:10.1.2.3", "203.0.113.7", "203.0.113.7"),  # a dual-stack socket's view of an IPv4 proxy
    ],
)
def test_trusted_proxies_may_be_networks(peer, forwarded, expected, settings):
    settings.PLAYGROUND_TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.1"]
    assert client_address(peer=peer, headers={"X-Forwarded-For": forwarded}) == expected


async def test_a_ban_behind_a_proxy_network_holds_for_the_client_only(async_client, raw, clock, settings):
    settings.PLAYGROUND_TRUSTED_PROXIES = ["10.0.0.0/24"]
    for n in range(5):  # the client's requests reach us through different proxies of the network
        await call(async_client, WRONG, peer=f"10.0.0.{n + 1}", forwarded="203.0.113.7")
    assert (await call(async_client, raw, peer="10.0.0.9", forwarded="203.0.113.7")).status_code == 403
    assert (await call(async_client, raw, peer="10.0.0.9", forwarded="203.0.113.8")).status_code == 200


def test_a_trusted_proxy_that_is_not_an_address_is_refused(settings):
    settings.PLAYGROUND_TRUSTED_PROXIES = ["nginx.internal"]
    with pytest.raises(ImproperlyConfigured, match="nginx.internal"):
        client_address(peer="10.0.0.1", headers={})


# --- /metrics -------------------------------------------------------------------------------------------------------


def scrape(token: str | None, *, peer: str = CLIENT):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return Client().get("/metrics", headers=headers, REMOTE_ADDR=peer)


def test_a_wrong_metrics_token_counts_and_bans_the_scraper(fake_pool, clock, settings):
    settings.PLAYGROUND_METRICS_TOKEN = "scrape-secret"
    for _ in range(5):
        assert scrape("guess").status_code == 403
    banned = scrape("scrape-secret")
    assert banned.status_code == 403 and banned["Retry-After"] == "300"
    assert "too many failed authentication attempts" in banned.content.decode()
    assert scrape("scrape-secret", peer="198.51.100.21").status_code == 200


def test_scrapes_without_a_token_do_not_count(fake_pool, clock, settings):
    settings.PLAYGROUND_METRICS_TOKEN = "scrape-secret"
    for _ in range(10):
        assert scrape(None).status_code == 403
    assert scrape("scrape-secret").status_code == 200


async def test_failures_on_metrics_and_the_api_share_one_counter(async_client, raw, clock, settings, fake_pool):
    settings.PLAYGROUND_METRICS_TOKEN = "scrape-secret"
    for _ in range(3):
        await sync_to_async(scrape)("guess")
    for _ in range(2):
        await call(async_client, WRONG)
    assert (await call(async_client, raw)).status_code == 403


# --- WebSocket handshakes --------------------------------------------------------------------------------------------


@pytest.fixture
def cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def handshake(cookie: bytes, *, peer: str = CLIENT, forwarded: str | None = None) -> tuple[bool, object]:
    headers = [(b"origin", b"http://localhost"), (b"cookie", cookie)]
    if forwarded:
        headers.append((b"x-forwarded-for", forwarded.encode()))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    communicator.scope["client"] = (peer, 50000)  # the communicator names no client; the application reads this
    result = await communicator.connect(timeout=5)
    if result[0]:
        await communicator.disconnect()
    return result


async def test_a_websocket_handshake_from_a_banned_address_is_refused(cookie, fake_pool, clock):
    assert (await handshake(cookie))[0]
    for _ in range(5):
        await sync_to_async(auth_failure_record)(address=CLIENT)
    connected, _ = await handshake(cookie)
    assert not connected  # a valid session, refused all the same
    assert (await handshake(cookie, peer="198.51.100.21"))[0]
    clock.advance(300)
    assert (await handshake(cookie))[0]


async def test_a_websocket_ban_behind_a_trusted_proxy_is_the_clients(cookie, fake_pool, clock, settings):
    settings.PLAYGROUND_TRUSTED_PROXIES = ["10.0.0.0/8"]
    for _ in range(5):
        await sync_to_async(auth_failure_record)(address="203.0.113.7")
    assert not (await handshake(cookie, peer="10.0.0.1", forwarded="203.0.113.7"))[0]
    assert (await handshake(cookie, peer="10.0.0.1", forwarded="203.0.113.8"))[0]


async def test_a_stale_session_cookie_is_refused_but_does_not_count(fake_pool, clock):
    for _ in range(10):  # a tab left open after logging out reconnects with a session that no longer exists
        connected, code = await handshake(b"sessionid=" + b"x" * 32)
        assert not connected and code == 4401
    assert await sync_to_async(ban_remaining)(address=CLIENT) == 0
