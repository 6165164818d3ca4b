"""The TGI routes as a client meets them: Daphne serving the real default text model, driven over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from tests.livesite import live_api_token, live_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, raw API token of the site's user)."""
    workdir = tmp_path_factory.mktemp("tgi-site")
    with live_site(workdir) as base:
        yield base, live_api_token(workdir, label="tgi live tests")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_generate_with_details_on_the_real_default_model(site):
    base, token = site
    body = {"inputs": "The capital of France is", "parameters": {"max_new_tokens": 8, "details": True, "seed": 1}}
    response = requests.post(f"{base}/generate", json=body, headers=_auth(token), timeout=120)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["generated_text"]
    assert data["details"]["finish_reason"] in ("length", "eos_token")
    assert 1 <= data["details"]["generated_tokens"] <= 8
    assert data["details"]["seed"] is None  # no sampling parameter given: greedy, as in TGI
    again = requests.post(f"{base}/generate", json=body, headers=_auth(token), timeout=120).json()
    assert again["generated_text"] == data["generated_text"]  # greedy is deterministic


def test_generate_stream_on_the_real_default_model(site):
    base, token = site
    body = {"inputs": "Once upon a time", "parameters": {"max_new_tokens": 12, "do_sample": True, "seed": 5}}
    with requests.post(f"{base}/generate_stream", json=body, headers=_auth(token), stream=True, timeout=120) as r:
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events = [json.loads(line[len("data: ") :]) for line in r.iter_lines(decode_unicode=True) if line]
    assert len(events) >= 2
    last = events[-1]
    assert last["generated_text"] == "".join(e["token"]["text"] for e in events)
    assert last["details"]["finish_reason"] in ("length", "eos_token")
    assert last["details"]["seed"] == 5
    assert all(e["generated_text"] is None for e in events[:-1])


def test_info_and_refusals_on_the_real_site(site):
    base, token = site
    info = requests.get(f"{base}/info", headers=_auth(token), timeout=30).json()
    assert info["model_id"] == "gemma-3-270m"
    assert info["max_total_tokens"] == 1024 and info["model_dtype"] == "Q4_K_M"
    assert requests.get(f"{base}/info", timeout=30).status_code == 401
    bad = requests.post(
        f"{base}/generate", json={"inputs": "Hi", "parameters": {"temprature": 1}}, headers=_auth(token), timeout=30
    )
    assert bad.status_code == 400 and "parameters.temprature" in bad.json()["error"]["message"]
    chat = requests.post(
        f"{base}/models/smollm2-135m-instruct/generate",
        json={"inputs": "Say hi.", "parameters": {"max_new_tokens": 5}},
        headers=_auth(token),
        timeout=120,
    )
    assert chat.status_code == 200 and chat.json()["generated_text"]


def test_huggingface_hub_inference_client_given_the_sites_root_url_works_unchanged(site):
    from huggingface_hub import InferenceClient

    base, token = site
    client = InferenceClient(base, token=token)
    output = client.text_generation("The sky is", max_new_tokens=6, details=True)
    assert output.generated_text and output.details.generated_tokens >= 1
    plain = client.text_generation("The sky is", max_new_tokens=6)
    assert plain == output.generated_text  # greedy both times
    assert "".join(client.text_generation("The sky is", max_new_tokens=6, stream=True)) == plain


def test_huggingface_hub_inference_client_talks_to_the_generate_route(site):
    from huggingface_hub import InferenceClient

    base, token = site
    client = InferenceClient(f"{base}/generate", token=token)
    output = client.text_generation("The sky is", max_new_tokens=6, details=True)
    assert output.generated_text and output.details.finish_reason in ("length", "eos_token")
    streamed = list(client.text_generation("The sky is", max_new_tokens=6, stream=True))
    assert "".join(streamed) == output.generated_text  # greedy both times
