"""Setting a token's limits: its limits page (form, validation, owner only), the token list, and the admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.tokens.limits import limits_check
from playground.tokens.models import ApiToken
from playground.tokens.services import token_create, token_revoke
from playground.usage.models import PriceVersion, UsageRecord
from playground.usage.pricing import CATALOG_EPOCH

pytestmark = pytest.mark.django_db

EMPTY = {"requests_per_minute": "", "tokens_per_minute": "", "spend_per_day": "", "spend_per_month": ""}


@pytest.fixture
def mine(user) -> ApiToken:
    return token_create(user=user, label="laptop")[0]


@pytest.fixture
def theirs(other_user) -> ApiToken:
    return token_create(user=other_user, label="their token")[0]


def limits_url(token: ApiToken) -> str:
    return reverse("tokens:limits", args=[token.pk])


def test_limits_url_and_login(client, mine):
    assert limits_url(mine) == f"/tokens/{mine.pk}/limits/"
    response = client.get(limits_url(mine))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_owner_sets_limits_and_they_apply(client, user, mine):
    client.force_login(user)
    page = client.get(limits_url(mine))
    assert page.status_code == 200 and 'name="requests_per_minute"' in page.content.decode()
    data = {"requests_per_minute": "2", "tokens_per_minute": "5000", "spend_per_day": "1.5", "spend_per_month": "20"}
    response = client.post(limits_url(mine), data)
    assert response.status_code == 302 and response["Location"] == f"/tokens/#token-{mine.pk}"
    mine.refresh_from_db()
    assert (mine.requests_per_minute, mine.tokens_per_minute) == (2, 5000)
    assert (mine.spend_per_day, mine.spend_per_month) == (Decimal("1.5"), Decimal("20"))
    now = timezone.now()
    limits_check(token=mine, now=now)
    limits_check(token=mine, now=now)
    with pytest.raises(Exception, match="2 requests per minute"):
        limits_check(token=mine, now=now)


def test_empty_fields_clear_the_limits(client, user, mine):
    mine.requests_per_minute, mine.spend_per_month = 5, Decimal("3")
    mine.save()
    client.force_login(user)
    assert client.post(limits_url(mine), EMPTY).status_code == 302
    mine.refresh_from_db()
    assert mine.requests_per_minute is None and mine.spend_per_month is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("requests_per_minute", "0", "Must be at least 1; leave it empty for no limit."),
        ("requests_per_minute", "-3", "Must be at least 1; leave it empty for no limit."),
        ("tokens_per_minute", "lots", "Enter a whole number."),
        ("tokens_per_minute", "1.5", "Enter a whole number."),
        ("spend_per_day", "0", "Must be more than 0; leave it empty for no cap."),
        ("spend_per_month", "-1", "Must be more than 0; leave it empty for no cap."),
        ("spend_per_day", "0.0000001", "Ensure that there are no more than 6 decimal places."),
        ("spend_per_month", "ten", "Enter a number."),
    ],
)
def test_bad_values_are_refused_with_a_message(client, user, mine, field, value, message):
    client.force_login(user)
    response = client.post(limits_url(mine), {**EMPTY, field: value})
    assert response.status_code == 400
    assert message in response.content.decode()
    mine.refresh_from_db()
    assert getattr(mine, field) is None


def test_a_daily_cap_above_the_monthly_cap_is_refused(client, user, mine):
    client.force_login(user)
    response = client.post(limits_url(mine), {**EMPTY, "spend_per_day": "10", "spend_per_month": "5"})
    assert response.status_code == 400 and "more than the monthly cap" in response.content.decode()


def test_htmx_post_swaps_the_panel_with_errors_or_saved(client, user, mine):
    client.force_login(user)
    bad = client.post(limits_url(mine), {**EMPTY, "requests_per_minute": "0"}, headers={"HX-Request": "true"})
    assert bad.status_code == 200
    body = bad.content.decode()
    assert body.lstrip().startswith('<div id="limits-panel"') and "Must be at least 1" in body
    good = client.post(limits_url(mine), {**EMPTY, "requests_per_minute": "7"}, headers={"HX-Request": "true"})
    assert good.status_code == 200 and "Limits saved." in good.content.decode()
    assert 'data-limit="requests_per_minute" data-used="0" data-left="7"' in good.content.decode()


def test_another_users_token_is_404(client, user, theirs):
    client.force_login(user)
    assert client.get(limits_url(theirs)).status_code == 404
    assert client.post(limits_url(theirs), {**EMPTY, "requests_per_minute": "1"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.requests_per_minute is None


def test_token_list_shows_limits_used_and_left(client, user, mine):
    mine.tokens_per_minute, mine.spend_per_day = 1000, Decimal("2")
    mine.save()
    price = PriceVersion.objects.create(model_id="fake-chat", effective_from=CATALOG_EPOCH)
    UsageRecord.objects.create(
        request_id="r1",
        user=user,
        token=mine,
        model_id="fake-chat",
        task="text-to-text",
        source="api",
        endpoint="/v1/chat/completions",
        prompt_tokens=200,
        completion_tokens=50,
        outcome="finished",
        price_version=price,
        cost=Decimal("0.5"),
    )
    bare = token_create(user=user, label="bare")[0]
    revoked = token_create(user=user, label="old")[0]
    token_revoke(user=user, token_id=revoked.pk)
    client.force_login(user)
    body = client.get(reverse("tokens:list")).content.decode()
    assert 'data-limit="tokens_per_minute" data-used="250" data-left="750"' in body
    assert "250 of 1000 used" in body and "750 left" in body
    assert "0.5 USD of 2 USD used" in body and "1.5 USD left" in body
    assert 'data-limit="requests_per_minute"' not in body  # only the limits a token has are listed
    assert f'href="{limits_url(mine)}">Change limits' in body
    assert f'href="{limits_url(bare)}">Set limits' in body
    assert limits_url(revoked) not in body


def test_reached_limit_shows_when_it_frees_up(client, user, mine):
    mine.requests_per_minute = 1
    mine.save()
    limits_check(token=mine, now=timezone.now())
    client.force_login(user)
    body = client.get(limits_url(mine)).content.decode()
    assert 'data-left="0" class="token-limit-reached"' in body and "frees up at" in body


def test_admin_sets_limits_and_shows_use(client, django_user_model, mine):
    admin = django_user_model.objects.create_superuser("root", password="root-pass-123!")
    client.force_login(admin)
    url = reverse("admin:tokens_apitoken_change", args=[mine.pk])
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="tokens_per_minute"' in body and "Used and left now" in body
    assert "Requests per minute: 0 used, no limit" in body
    data = {
        "user": mine.user.pk,
        "label": mine.label,
        "expires_at_0": "",
        "expires_at_1": "",
        "revoked_at_0": "",
        "revoked_at_1": "",
        "requests_per_minute": "30",
        "tokens_per_minute": "",
        "spend_per_day": "0",
        "spend_per_month": "9.99",
    }
    refused = client.post(url, data)
    assert refused.status_code == 200 and "Must be more than 0" in refused.content.decode()
    data["spend_per_day"] = "1"
    assert client.post(url, data).status_code == 302
    mine.refresh_from_db()
    assert (mine.requests_per_minute, mine.spend_per_day, mine.spend_per_month) == (30, 1, Decimal("9.99"))
