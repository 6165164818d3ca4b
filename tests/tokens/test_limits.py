"""Rate limits and spending caps per API token (playground/tokens/limits.py), with a fixed clock.

Most tests call `limits_check` with fixed times; ledger rows are created directly and backdated. The last ones go
through the real `api_view` decorator to see the 429 a client gets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse

from playground.api import auth
from playground.api.auth import api_view
from playground.contract.errors import Problem
from playground.tokens.limits import limits_check, limits_status
from playground.tokens.models import ApiToken
from playground.tokens.services import token_create
from playground.urls import urlpatterns as site_urlpatterns
from playground.usage.models import PriceVersion, UsageRecord
from playground.usage.pricing import CATALOG_EPOCH

T0 = datetime(2026, 5, 17, 12, 0, 0, tzinfo=UTC)
_ids = count()


@api_view
async def ping(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [*site_urlpatterns, path("test-api/ping/", ping, name="test-ping")]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture
def token(user) -> ApiToken:
    return token_create(user=user, label="laptop")[0]


@pytest.fixture
def price() -> PriceVersion:
    return PriceVersion.objects.create(model_id="fake-chat", effective_from=CATALOG_EPOCH)


def limit(token: ApiToken, **limits: object) -> ApiToken:
    for name, value in limits.items():
        setattr(token, name, value)
    token.save()
    return token


def spend(token: ApiToken, price: PriceVersion, *, at: datetime, cost: str = "0", tokens: int = 0) -> UsageRecord:
    """A ledger row of this token written at `at` (created_at is auto_now_add, so it is backdated after)."""
    record = UsageRecord.objects.create(
        request_id=f"limits-{next(_ids)}",
        user=token.user,
        token=token,
        model_id="fake-chat",
        task="text-to-text",
        source="api",
        endpoint="/v1/chat/completions",
        prompt_tokens=tokens - tokens // 3,
        completion_tokens=tokens // 3,
        outcome="finished",
        price_version=price,
        cost=Decimal(cost),
    )
    UsageRecord.objects.filter(pk=record.pk).update(created_at=at)
    return record


def refusal(token: ApiToken, now: datetime) -> Problem:
    with pytest.raises(Problem) as caught:
        limits_check(token=token, now=now)
    problem = caught.value
    assert problem.code == "rate_limit_exceeded" and problem.status == 429 and problem.type == "rate_limit_error"
    assert problem.headers["Retry-After"] == str(problem.extra["retry_after"])
    assert isinstance(problem.extra["retry_after"], int) and problem.extra["retry_after"] >= 1
    return problem


def status_of(token: ApiToken, name: str, now: datetime):  # noqa: ANN201
    return next(s for s in limits_status(token=token, now=now) if s.name == name)


# Requests per minute.


def test_requests_per_minute_trips_on_the_request_after_the_limit(token):
    limit(token, requests_per_minute=3)
    for second in (0, 1, 2):
        limits_check(token=token, now=T0 + timedelta(seconds=second))
    problem = refusal(token, T0 + timedelta(seconds=10))
    # The first admission (T0) leaves the window at T0+60: 50 s from now.
    assert problem.extra["retry_after"] == 50 and problem.headers["Retry-After"] == "50"
    assert "3 requests per minute" in problem.message and "50 s" in problem.message


def test_the_request_window_slides_with_the_clock(token):
    limit(token, requests_per_minute=3)
    for second in (0, 1, 2):
        limits_check(token=token, now=T0 + timedelta(seconds=second))
    refusal(token, T0 + timedelta(seconds=59, microseconds=900_000))
    limits_check(token=token, now=T0 + timedelta(seconds=60))  # T0's request has left the window
    late = refusal(token, T0 + timedelta(seconds=60, microseconds=500_000))
    assert late.extra["retry_after"] == 1  # T0+1 leaves at T0+61
    limits_check(token=token, now=T0 + timedelta(seconds=61))
    limits_check(token=token, now=T0 + timedelta(seconds=62))
    assert status_of(token, "requests_per_minute", T0 + timedelta(seconds=62)).used == 3


def test_refused_requests_do_not_push_the_reset_away(token):
    limit(token, requests_per_minute=1)
    limits_check(token=token, now=T0)
    for second in range(1, 60):
        refusal(token, T0 + timedelta(seconds=second))
    limits_check(token=token, now=T0 + timedelta(seconds=60))


def test_a_burst_in_one_second_is_counted_exactly(token):
    limit(token, requests_per_minute=5)
    for _ in range(5):
        limits_check(token=token, now=T0)
    assert refusal(token, T0).extra["retry_after"] == 60
    assert status_of(token, "requests_per_minute", T0).used == 5


def test_tokens_have_separate_request_windows(token, user):
    other = limit(token_create(user=user, label="other")[0], requests_per_minute=1)
    limit(token, requests_per_minute=1)
    limits_check(token=token, now=T0)
    limits_check(token=other, now=T0)
    refusal(token, T0)
    refusal(other, T0)


# Tokens per minute: the ledger's prompt + completion tokens of the last 60 s.


def test_tokens_per_minute_admits_under_the_limit_and_refuses_once_it_is_reached(token, price):
    limit(token, tokens_per_minute=100)
    spend(token, price, at=T0 - timedelta(seconds=30), tokens=60)
    spend(token, price, at=T0 - timedelta(seconds=20), tokens=39)
    limits_check(token=token, now=T0)  # 99 < 100: admitted, and this request may cross the limit
    spend(token, price, at=T0 - timedelta(seconds=10), tokens=50)  # it did: 149 in the window
    problem = refusal(token, T0)
    # Once the 60 tokens written at T0-30 leave the window (T0+30), 39 + 50 = 89 is under the limit again.
    assert problem.extra["retry_after"] == 30
    assert "100 tokens per minute" in problem.message and "149" in problem.message


def test_the_token_window_slides_with_the_clock(token, price):
    limit(token, tokens_per_minute=100)
    spend(token, price, at=T0 - timedelta(seconds=50), tokens=80)
    spend(token, price, at=T0 - timedelta(seconds=5), tokens=80)
    assert refusal(token, T0).extra["retry_after"] == 10  # the first 80 leaves at T0+10
    refusal(token, T0 + timedelta(seconds=9))
    limits_check(token=token, now=T0 + timedelta(seconds=10))
    status = status_of(token, "tokens_per_minute", T0 + timedelta(seconds=10))
    assert (status.used, status.left) == (80, 20)


def test_only_this_tokens_ledger_rows_count(token, user, price):
    other = token_create(user=user, label="other")[0]
    limit(token, tokens_per_minute=10, spend_per_day=Decimal("1"))
    spend(other, price, at=T0 - timedelta(seconds=1), tokens=1000, cost="50")
    limits_check(token=token, now=T0)


def test_rows_after_now_do_not_count(token, price):
    limit(token, tokens_per_minute=10)
    spend(token, price, at=T0 + timedelta(seconds=1), tokens=1000)
    limits_check(token=token, now=T0)


# Spending caps: the ledger's cost since the start of the UTC day or month.


def test_daily_cap_counts_todays_spend_and_resets_at_midnight_utc(token, price):
    limit(token, spend_per_day=Decimal("1.00"))
    spend(token, price, at=T0.replace(hour=0) - timedelta(seconds=1), cost="5")  # yesterday: not counted
    spend(token, price, at=T0.replace(hour=0), cost="0.6")
    limits_check(token=token, now=T0)
    spend(token, price, at=T0 - timedelta(hours=1), cost="0.4")
    problem = refusal(token, T0)
    assert problem.extra["retry_after"] == 12 * 3600  # T0 is noon
    assert "per day" in problem.message and "2026-05-18 00:00:00 UTC" in problem.message
    assert "1 USD" in problem.message
    limits_check(token=token, now=datetime(2026, 5, 18, tzinfo=UTC))


def test_monthly_cap_counts_this_months_spend_and_resets_on_the_first(token, price):
    limit(token, spend_per_month=Decimal("10"))
    spend(token, price, at=datetime(2026, 4, 30, 23, 59, tzinfo=UTC), cost="100")  # last month
    spend(token, price, at=datetime(2026, 5, 1, tzinfo=UTC), cost="4")
    spend(token, price, at=datetime(2026, 5, 10, tzinfo=UTC), cost="5.999999")
    limits_check(token=token, now=T0)
    spend(token, price, at=T0, cost="0.000001")
    problem = refusal(token, T0)
    assert problem.extra["retry_after"] == int((datetime(2026, 6, 1, tzinfo=UTC) - T0).total_seconds())
    assert "per month" in problem.message and "2026-06-01 00:00:00 UTC" in problem.message
    limits_check(token=token, now=datetime(2026, 6, 1, tzinfo=UTC))


def test_monthly_cap_in_december_resets_in_january(token, price):
    limit(token, spend_per_month=Decimal("1"))
    now = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
    spend(token, price, at=now - timedelta(days=3), cost="1")
    assert refusal(token, now).extra["retry_after"] == 30


def test_when_several_limits_are_reached_the_one_that_frees_last_is_named(token, price):
    limit(token, tokens_per_minute=10, spend_per_day=Decimal("1"), spend_per_month=Decimal("2"))
    spend(token, price, at=T0 - timedelta(days=3), cost="1")
    spend(token, price, at=T0 - timedelta(seconds=1), tokens=50, cost="1")
    problem = refusal(token, T0)
    assert "per month" in problem.message


def test_a_refusal_by_the_ledger_does_not_use_up_a_request(token, price):
    limit(token, requests_per_minute=1, spend_per_day=Decimal("1"))
    spend(token, price, at=T0 - timedelta(hours=1), cost="1")
    refusal(token, T0)
    assert status_of(token, "requests_per_minute", T0).used == 0


# No limits.


def test_an_unlimited_token_is_never_refused(token, price, django_assert_num_queries):
    spend(token, price, at=T0 - timedelta(seconds=1), tokens=10**9, cost="100000")
    with django_assert_num_queries(0):  # no limits: the ledger is not even read
        for i in range(500):
            limits_check(token=token, now=T0 + timedelta(milliseconds=i))
    statuses = limits_status(token=token, now=T0 + timedelta(seconds=1))
    assert all(s.unlimited and not s.reached and s.left is None for s in statuses)
    assert [s.used for s in statuses] == [500, 10**9, Decimal("100000"), Decimal("100000")]


def test_clearing_a_limit_lifts_the_refusal(token, price):
    limit(token, spend_per_day=Decimal("1"))
    spend(token, price, at=T0 - timedelta(hours=1), cost="2")
    refusal(token, T0)
    limit(token, spend_per_day=None)
    limits_check(token=token, now=T0)


def test_status_shows_used_and_left(token, price):
    limit(token, requests_per_minute=10, tokens_per_minute=1000, spend_per_day=Decimal("2"))
    for _ in range(4):
        limits_check(token=token, now=T0)
    spend(token, price, at=T0 - timedelta(seconds=30), tokens=300, cost="0.5")
    spend(token, price, at=T0 - timedelta(days=2), tokens=300, cost="1")
    by_name = {s.name: s for s in limits_status(token=token, now=T0)}
    assert (by_name["requests_per_minute"].used, by_name["requests_per_minute"].left) == (4, 6)
    assert (by_name["tokens_per_minute"].used, by_name["tokens_per_minute"].left) == (300, 700)
    assert (by_name["spend_per_day"].used, by_name["spend_per_day"].left) == (Decimal("0.5"), Decimal("1.5"))
    assert by_name["spend_per_day"].left_display == "1.5 USD"
    assert by_name["spend_per_month"].unlimited and by_name["spend_per_month"].used == Decimal("1.5")
    assert not any(s.reached for s in by_name.values())


# Through the API: the 429 a client sees.


def frozen_clock(monkeypatch: pytest.MonkeyPatch, at: datetime) -> SimpleNamespace:
    clock = SimpleNamespace(at=at)
    monkeypatch.setattr(auth, "timezone", SimpleNamespace(now=lambda: clock.at))
    return clock


@pytest.mark.django_db(transaction=True)
async def test_the_api_answers_429_rate_limit_exceeded_with_retry_after(async_client, user, monkeypatch):
    clock = frozen_clock(monkeypatch, T0)
    token, raw = await sync_to_async(token_create)(user=user, label="laptop")
    token.requests_per_minute = 2
    await token.asave()
    headers = {"Authorization": f"Bearer {raw}"}
    for _ in range(2):
        assert (await async_client.get(reverse("test-ping"), headers=headers)).status_code == 200
    clock.at = T0 + timedelta(seconds=15)
    response = await async_client.get(reverse("test-ping"), headers=headers)
    assert response.status_code == 429 and response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "45"
    error = json.loads(response.content)["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
    assert error["retry_after"] == 45 and "2 requests per minute" in error["message"]
    clock.at = T0 + timedelta(seconds=60)
    assert (await async_client.get(reverse("test-ping"), headers=headers)).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_the_api_refuses_a_token_over_its_daily_cap(async_client, user, monkeypatch):
    frozen_clock(monkeypatch, T0)
    token, raw = await sync_to_async(token_create)(user=user, label="laptop")
    token.spend_per_day = Decimal("0.5")
    await token.asave()
    price = await PriceVersion.objects.acreate(model_id="fake-chat", effective_from=CATALOG_EPOCH)
    await sync_to_async(spend)(token, price, at=T0 - timedelta(minutes=5), cost="0.5")
    response = await async_client.get(reverse("test-ping"), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 429 and response["Retry-After"] == str(12 * 3600)
    error = json.loads(response.content)["error"]
    assert error["retry_after"] == 12 * 3600 and "spending cap" in error["message"] and "per day" in error["message"]
