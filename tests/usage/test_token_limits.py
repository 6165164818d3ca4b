"""The usage page's "API token limits" section: each of the user's active tokens with its limits and what is left."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from playground.tokens.limits import limits_check
from playground.tokens.services import token_create, token_revoke
from playground.usage.models import PriceVersion, UsageRecord
from playground.usage.pricing import CATALOG_EPOCH

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clean_cache() -> Iterator[None]:
    cache.clear()  # request counts live in the cache, keyed by token id, and ids come back in the next test
    yield
    cache.clear()


def cell(body: str, token_pk: int, name: str) -> str:
    """The text of one token's cell for one limit."""
    row = body[body.index(f'<tr data-token="{token_pk}">') :]
    row = row[: row.index("</tr>")]
    start = row.index(f'data-limit="{name}"')
    return " ".join(row[row.index(">", start) + 1 : row.index("</td>", start)].split())


def test_usage_page_shows_each_active_tokens_limits_and_what_is_left(client, user, other_user):
    capped, _ = token_create(user=user, label="scripts")
    capped.requests_per_minute, capped.spend_per_day = 10, Decimal("1")
    capped.save()
    free, _ = token_create(user=user, label="free")
    gone, _ = token_create(user=user, label="gone")
    token_revoke(user=user, token_id=gone.pk)
    theirs, _ = token_create(user=other_user, label="their token")
    price = PriceVersion.objects.create(model_id="fake-chat", effective_from=CATALOG_EPOCH)
    UsageRecord.objects.create(
        request_id="u1",
        user=user,
        token=capped,
        model_id="fake-chat",
        task="text-to-text",
        source="api",
        endpoint="/v1/chat/completions",
        prompt_tokens=10,
        completion_tokens=5,
        outcome="finished",
        price_version=price,
        cost=Decimal("0.25"),
    )
    for _ in range(3):
        limits_check(token=capped, now=timezone.now())

    client.force_login(user)
    body = client.get(reverse("usage:usage")).content.decode()
    assert 'id="token-limits"' in body
    assert cell(body, capped.pk, "requests_per_minute") == "3 of 10 · <strong>7 left</strong>"
    assert cell(body, capped.pk, "spend_per_day") == "0.25 USD of 1 USD · <strong>0.75 USD left</strong>"
    assert cell(body, capped.pk, "tokens_per_minute") == '<span class="muted">no limit</span> · 15 used'
    assert cell(body, free.pk, "spend_per_month") == '<span class="muted">no limit</span> · 0 USD used'
    assert f'href="{reverse("tokens:limits", args=[capped.pk])}"' in body
    assert f'data-token="{gone.pk}"' not in body  # revoked: it makes no more requests
    assert f'data-token="{theirs.pk}"' not in body and "their token" not in body


def test_reached_limit_says_when_it_resets(client, user):
    token, _ = token_create(user=user, label="scripts")
    token.requests_per_minute = 1
    token.save()
    limits_check(token=token, now=timezone.now())
    client.force_login(user)
    text = cell(client.get(reverse("usage:usage")).content.decode(), token.pk, "requests_per_minute")
    assert text.startswith("1 of 1 · <strong>0 left</strong> · resets in ") and text.endswith(" s")


def test_htmx_period_change_leaves_the_limits_out(client, user):
    token_create(user=user, label="scripts")
    client.force_login(user)
    body = client.get(reverse("usage:usage"), {"period": "7"}, headers={"HX-Request": "true"}).content.decode()
    assert 'id="report"' in body and 'id="token-limits"' not in body


def test_staff_see_another_users_token_limits_without_change_links(client, user, django_user_model):
    token, _ = token_create(user=user, label="scripts")
    staff = django_user_model.objects.create_user("ops", password="x-ops-pass-1", is_staff=True)
    client.force_login(staff)
    body = client.get(reverse("usage:usage"), {"user": user.username}).content.decode()
    assert f'data-token="{token.pk}"' in body
    assert reverse("tokens:limits", args=[token.pk]) not in body  # the page is the owner's only
    everyone = client.get(reverse("usage:usage"), {"all": "1"}).content.decode()
    assert 'id="token-limits"' not in everyone
