"""Failed-authentication bans and revocation/expiry, exercised through the real `api_view` decorator.

A tiny async view wrapped in `api_view` is called with AsyncRequestFactory (so a test can pick the socket address)
or, next to the site's own URLs in this module's URLconf, with the async test client. The throttle's clock is
replaced so a test can move time.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.test import AsyncRequestFactory
from django.urls import path, reverse
from django.utils import timezone

from playground.api.auth import api_view
from playground.tokens.hashing import PREFIX
from playground.tokens.models import ApiToken
from playground.tokens.services import token_create
from playground.tokens.throttle import client_address
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
