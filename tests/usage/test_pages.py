"""The usage page, its CSV export, the pricing page and the card's usage tab (records created directly)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.usage.models import PriceVersion, UsageRecord
from playground.usage.pricing import CATALOG_EPOCH

pytestmark = pytest.mark.django_db
_ids = count()


@pytest.fixture
def price(fake_pool) -> PriceVersion:  # noqa: ANN001
    return PriceVersion.objects.create(
        model_id="fake-chat",
        effective_from=CATALOG_EPOCH,
        input_per_million_tokens=Decimal("2"),
        output_per_million_tokens=Decimal("6"),
    )


def record(user, price: PriceVersion, *, cost: str, model_id: str = "fake-chat", days_ago: int = 0, **extra):  # noqa: ANN001, ANN003, ANN201
    rec = UsageRecord.objects.create(
        request_id=f"req-{next(_ids)}",
        user=user,
        model_id=model_id,
        task="text-to-text",
        source=extra.pop("source", "playground"),
        endpoint="ws/chat",
        prompt_tokens=extra.pop("prompt_tokens", 10),
        completion_tokens=extra.pop("completion_tokens", 5),
        latency_ms=12.0,
        outcome="finished",
        price_version=price,
        cost=Decimal(cost),
        **extra,
    )
    if days_ago:  # created_at is auto_now_add, so backdate after the insert
        UsageRecord.objects.filter(pk=rec.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return rec


def page_totals(body: str) -> tuple[int, int, Decimal]:
    match = re.search(r'data-requests="(\d+)" data-tokens="(\d+)" data-cost="([\d.]+)"', body)
    assert match, "totals block missing"
    return int(match[1]), int(match[2]), Decimal(match[3])


def csv_rows(response) -> list[dict[str, str]]:  # noqa: ANN001
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_usage_page_requires_login(client):
    response = client.get(reverse("usage:usage"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_usage_page_shows_totals_breakdowns_and_charts_for_the_period(client, user, price):
    record(user, price, cost="0.001", prompt_tokens=100, completion_tokens=20)
    record(user, price, cost="0.0025", model_id="fake-completion", source="api", prompt_tokens=7, completion_tokens=3)
    record(user, price, cost="1", days_ago=40)  # outside the default 30 days
    client.force_login(user)
    body = client.get(reverse("usage:usage")).content.decode()
    assert page_totals(body) == (2, 130, Decimal("0.0035"))
    assert 'data-breakdown="model"' in body and "fake-completion" in body
    assert "Playground" in body and "Api" in body
    assert body.count("<svg") == 3 and body.count("<rect") == 3 * 30
    body = client.get(reverse("usage:usage"), {"period": "90"}).content.decode()
    assert page_totals(body)[0] == 3


def test_htmx_period_change_returns_only_the_report(client, user, price):
    record(user, price, cost="0.001")
    client.force_login(user)
    body = client.get(reverse("usage:usage"), {"period": "7"}, headers={"HX-Request": "true"}).content.decode()
    assert body.lstrip().startswith('<div id="report"') and "<html" not in body
    assert body.count("<rect") == 3 * 7


def test_user_never_sees_another_users_records(client, user, other_user, price):
    mine = record(user, price, cost="0.001")
    theirs = record(other_user, price, cost="0.5")
    client.force_login(user)
    for params in ({}, {"user": other_user.username}, {"all": "1"}):
        body = client.get(reverse("usage:usage"), params).content.decode()
        assert mine.request_id in body and theirs.request_id not in body
        assert page_totals(body)[2] == Decimal("0.001")
        rows = csv_rows(client.get(reverse("usage:export"), params))
        assert [row["request_id"] for row in rows] == [mine.request_id]


def test_staff_can_see_one_user_or_everyone(client, user, other_user, price, django_user_model):
    record(user, price, cost="0.001")
    theirs = record(other_user, price, cost="0.5")
    staff = django_user_model.objects.create_user(username="staff", password="pw-staff-123!", is_staff=True)
    client.force_login(staff)
    body = client.get(reverse("usage:usage"), {"user": other_user.username}).content.decode()
    assert theirs.request_id in body and page_totals(body)[2] == Decimal("0.5")
    assert page_totals(client.get(reverse("usage:usage"), {"all": "1"}).content.decode())[0] == 2
    assert len(csv_rows(client.get(reverse("usage:export"), {"all": "1"}))) == 2
    assert client.get(reverse("usage:usage"), {"user": "nobody"}).status_code == 404


def test_csv_export_matches_the_page_totals(client, user, price):
    record(user, price, cost="0.0012345", prompt_tokens=11, completion_tokens=4)
    record(user, price, cost="0.0000001", prompt_tokens=1, completion_tokens=0, days_ago=3)
    record(user, price, cost="0.25", days_ago=12)
    record(user, price, cost="9", days_ago=20)  # outside the exported range
    client.force_login(user)
    end = timezone.localdate()
    params = {"start": (end - timedelta(days=14)).isoformat(), "end": end.isoformat()}
    rows = csv_rows(client.get(reverse("usage:export"), params))
    requests, tokens, cost = page_totals(client.get(reverse("usage:usage"), params).content.decode())
    assert len(rows) == requests == 3
    assert sum(int(r["prompt_tokens"]) + int(r["completion_tokens"]) for r in rows) == tokens
    assert sum(Decimal(r["cost"]) for r in rows) == cost == Decimal("0.2512346")
    assert all(re.fullmatch(r"\d+\.\d+", r["cost"]) for r in rows)


def test_pricing_page_lists_every_catalog_model(client, fake_pool, price):
    PriceVersion.objects.create(
        model_id="fake-tts", effective_from=timezone.now() - timedelta(days=1), per_million_characters=Decimal("100")
    )
    body = client.get(reverse("pricing:index")).content.decode()
    for model_id in fake_pool.specs:
        assert f'data-model="{model_id}"' in body
    assert "<td>$2</td><td>$6</td>" in body and "<td>$100</td>" in body  # current versions, no exponents
    assert body.count("<form") >= len({spec.task for spec in fake_pool.specs.values()})


def test_pricing_calculator_prices_with_decimal(client, price):
    params = {"model": "fake-chat", "prompt_tokens": "1000000", "completion_tokens": "500000"}
    body = client.get(reverse("pricing:calculate"), params, headers={"HX-Request": "true"}).content.decode()
    assert 'data-estimate="5.00000000"' in body and "<html" not in body
    body = client.get(reverse("pricing:calculate"), {"model": "nope"}).content.decode()
    assert 'class="error"' in body


def test_card_usage_tab_shows_the_users_usage_of_that_model(client, user, other_user, price):
    mine = record(user, price, cost="0.002", prompt_tokens=30, completion_tokens=12)
    other_model = record(user, price, cost="0.1", model_id="fake-completion")
    theirs = record(other_user, price, cost="0.3")
    client.force_login(user)
    body = client.get(reverse("card", args=["fake-chat"]), {"tab": "usage"}).content.decode()
    assert page_totals(body) == (1, 42, Decimal("0.002"))
    assert mine.request_id in body
    assert other_model.request_id not in body and theirs.request_id not in body
