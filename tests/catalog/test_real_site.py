"""The site as a user runs it: Daphne serving the real default models, driven over HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from tests.livesite import live_site


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_site(tmp_path_factory.mktemp("site")) as base:
        yield base


def test_health_lists_real_models_and_the_device(server):
    data = json.load(urllib.request.urlopen(server + "/health"))
    assert data["status"] == "healthy"
    assert data["device"]["device"] in ("cpu", "cuda") and data["device"]["reason"]
    assert {m["id"] for m in data["models"]} >= {"smollm2-135m-instruct", "whisper-base", "piper-en-us-joe"}
    assert all(m["weights_present"] for m in data["models"])
    assert all(m["state"] == "not_loaded" for m in data["models"])  # models load lazily on first use


def test_catalog_and_cards_render_for_every_real_model(server):
    page = urllib.request.urlopen(server + "/").read().decode()
    data = json.load(urllib.request.urlopen(server + "/health"))
    for model in data["models"]:
        assert f'data-model="{model["id"]}"' in page
        for tab in ("overview", "code", "api", "pricing"):
            card = urllib.request.urlopen(f"{server}/models/{model['id']}/?tab={tab}").read().decode()
            assert f'data-tab-body="{tab}"' in card
