"""Catalog pages: the cards, filters and search, the card page tabs, and /health (fake engines)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from playground.catalog.services import model_stats_record

pytestmark = pytest.mark.django_db


def test_catalog_shows_a_card_per_model_with_its_facts(client, fake_pool):
    response = client.get(reverse("catalog"))
    assert response.status_code == 200
    body = response.content.decode()
    for model_id in fake_pool.specs:
        assert f'data-model="{model_id}"' in body
    assert 'data-device="cpu"' in body and "tests use fake engines" in body
    assert "not loaded" in body


def test_catalog_filters_by_task_group_and_searches_by_name(client, fake_pool):
    body = client.get(reverse("catalog"), {"task": "text-to-text"}).content.decode()
    assert 'data-model="fake-chat"' in body and 'data-model="fake-completion"' in body
    assert 'data-model="fake-stt"' not in body
    body = client.get(reverse("catalog"), {"task": "speech-to-text"}).content.decode()
    assert 'data-model="fake-stt"' in body and 'data-model="fake-chat"' not in body
    body = client.get(reverse("catalog"), {"q": "embed"}).content.decode()
    assert 'data-model="fake-embed"' in body and 'data-model="fake-tts"' not in body


def test_htmx_search_returns_only_the_cards_partial(client, fake_pool):
    response = client.get(reverse("catalog"), {"q": "chat"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="cards"')
    assert "<html" not in body


def test_card_overview_shows_description_limits_and_measured_speed(client, fake_pool):
    body = client.get(reverse("card", args=["fake-chat"])).content.decode()
    assert "Not measured yet" in body
    model_stats_record(model_id="fake-chat", tokens_per_second=100.0, ttft_seconds=0.05)
    model_stats_record(model_id="fake-chat", tokens_per_second=50.0, ttft_seconds=0.15)
    body = client.get(reverse("card", args=["fake-chat"])).content.decode()
    assert "90.0</strong> tokens/s" in body  # 100 moved 20% of the way to 50
    assert "70 ms</strong>" in body
    assert "2048 tokens" in body
    assert '<code>&lt;tool_call&gt;{"name": …' in body  # the call format, from the catalog


def test_speech_card_shows_real_time_factor(client, fake_pool):
    model_stats_record(model_id="fake-stt", real_time_factor=0.25)
    body = client.get(reverse("card", args=["fake-stt"])).content.decode()
    assert "0.250×</strong> real-time factor" in body


def test_every_tab_renders(client, fake_pool, user):
    client.force_login(user)
    for model_id in fake_pool.specs:
        for tab in ("overview", "playground", "code", "api", "usage", "pricing"):
            response = client.get(reverse("card", args=[model_id]), {"tab": tab})
            assert response.status_code == 200, (model_id, tab)
            assert f'data-tab-body="{tab}"' in response.content.decode()


def test_playground_asks_anonymous_visitors_to_log_in(client, fake_pool):
    body = client.get(reverse("card", args=["fake-chat"]), {"tab": "playground"}).content.decode()
    assert "to try this model" in body and reverse("login") in body


def test_unknown_model_is_404(client, fake_pool):
    assert client.get(reverse("card", args=["no-such-model"])).status_code == 404


def test_pricing_tab_lists_catalog_prices(client):
    body = client.get(reverse("card", args=["smollm2-135m-instruct"]), {"tab": "pricing"}).content.decode()
    assert "Input tokens" in body and "$0.02 / 1M" in body and "$0.04 / 1M" in body


def test_health_reports_status_device_and_each_models_load_state(client, fake_pool):
    fake_pool.warm(["fake-chat"])[0].result()
    data = client.get(reverse("health")).json()
    assert data["status"] == "healthy"
    assert data["device"]["device"] == "cpu" and data["device"]["reason"]
    states = {m["id"]: m["state"] for m in data["models"]}
    assert states["fake-chat"] == "loaded"
    assert states["fake-embed"] == "not_loaded"
    assert {m["id"] for m in data["models"]} == set(fake_pool.specs)


def test_card_and_health_say_why_each_model_runs_where_it_does(client, fake_pool):
    card = client.get(reverse("card", args=["fake-chat"])).content.decode()
    assert "runs on CPU" in card and "<span data-device-reason>tests use fake engines</span>" in card
    (chat,) = [m for m in client.get(reverse("health")).json()["models"] if m["id"] == "fake-chat"]
    assert chat["device_reason"] == "tests use fake engines" and chat["note"] == ""
