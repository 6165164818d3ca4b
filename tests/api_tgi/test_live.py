"""The TGI routes as a client meets them: Daphne serving the real default text model, driven over HTTP."""

from __future__ import annotations

import asyncio
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
    assert info["max_total_tokens"] == 4096 and info["model_dtype"] == "Q4_K_M"
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


# Hugging Face's own TGI client (`text-generation`, requirements-clients.txt), unchanged. It posts every request
# to the URL it is given: here the site's root, TGI's compatibility route.
PROMPT = "The capital of France is"


def _tgi_client(site):  # noqa: ANN202
    from text_generation import Client

    base, token = site
    return Client(base, headers=_auth(token), timeout=120)  # the first request may load the model


def _stream(client, **parameters):  # noqa: ANN001, ANN202
    """(every event, the last one) of a greedy generate_stream of PROMPT."""
    responses = list(client.generate_stream(PROMPT, max_new_tokens=8, **parameters))
    assert len(responses) >= 2
    return responses, responses[-1]


def test_text_generation_client_generate_returns_text_and_details(site):
    from text_generation import AsyncClient
    from text_generation.types import FinishReason

    client = _tgi_client(site)
    response = client.generate(PROMPT, max_new_tokens=8)
    assert response.generated_text.strip()
    assert response.details.finish_reason in (FinishReason.Length, FinishReason.EndOfSequenceToken)
    assert 1 <= response.details.generated_tokens <= 8
    assert response.details.seed is None  # do_sample=False: greedy
    assert "".join(t.text for t in response.details.tokens) == response.generated_text

    free = response.generated_text
    stop = free.split()[0]  # greedy decoding writes the same text again, so it reaches this word
    stopped = client.generate(PROMPT, max_new_tokens=8, stop_sequences=[stop])
    assert stopped.details.finish_reason == FinishReason.StopSequence
    assert stopped.generated_text == free[: free.index(stop) + len(stop)]  # TGI keeps the stop sequence

    base, token = site
    again = asyncio.run(AsyncClient(base, headers=_auth(token), timeout=120).generate(PROMPT, max_new_tokens=8))
    assert again.generated_text == free and again.details.generated_tokens == response.details.generated_tokens


def test_text_generation_client_generate_stream_yields_tokens_then_details(site):
    from text_generation.types import FinishReason

    base, token = site
    responses, last = _stream(_tgi_client(site))
    assert [r.token.id for r in responses] == list(range(len(responses)))
    assert all(r.generated_text is None and r.details is None for r in responses[:-1])
    assert last.generated_text == "".join(r.token.text for r in responses)
    assert last.generated_text.strip()
    assert last.details.finish_reason in (FinishReason.Length, FinishReason.EndOfSequenceToken)
    assert 1 <= last.details.generated_tokens <= 8
    assert last.details.seed is None  # do_sample=False: greedy
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 8}}
    plain = requests.post(f"{base}/generate", json=body, headers=_auth(token), timeout=120).json()
    assert last.generated_text == plain["generated_text"]  # greedy both times


def test_text_generation_client_stop_sequence_finishes_with_stop_sequence(site):
    from text_generation.types import FinishReason

    client = _tgi_client(site)
    free = _stream(client)[1].generated_text
    # Greedy decoding writes the same text again, so it reaches this word: the first one that starts after the first
    # word (one matched in the first token would end the stream at its first event).
    first = free.split()[0]
    stop = next(word for word in free.split()[1:] if free.index(word) > free.index(first) + len(first))
    responses, last = _stream(client, stop_sequences=[stop])
    assert last.details.finish_reason == FinishReason.StopSequence
    assert last.generated_text == free[: free.index(stop) + len(stop)]  # TGI keeps the stop sequence
    assert "".join(r.token.text for r in responses) == last.generated_text
    assert last.details.generated_tokens <= 8


def test_text_generation_async_client_streams(site):
    from text_generation import AsyncClient
    from text_generation.types import FinishReason

    base, token = site

    async def run():  # noqa: ANN202
        client = AsyncClient(base, headers=_auth(token), timeout=120)
        return [r async for r in client.generate_stream(PROMPT, max_new_tokens=8)]

    streamed = asyncio.run(run())
    last = streamed[-1]
    assert len(streamed) >= 2 and last.generated_text.strip()
    assert last.generated_text == "".join(r.token.text for r in streamed)
    assert last.details.finish_reason in (FinishReason.Length, FinishReason.EndOfSequenceToken)
    assert 1 <= last.details.generated_tokens <= 8
    assert last.generated_text == _stream(_tgi_client(site))[1].generated_text  # greedy both times


def test_inference_client_grammar_json_and_regex(site):
    """TGI's grammar parameter, as huggingface_hub sends it."""
    import json

    from huggingface_hub import InferenceClient

    base, token = site
    client = InferenceClient(base, token=token)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    answer = client.text_generation(
        "The largest city in France:", max_new_tokens=64, grammar={"type": "json", "value": schema}
    )
    data = json.loads(answer)
    assert isinstance(data["city"], str) and isinstance(data["population"], int)
    answer = client.text_generation("Is water wet?", max_new_tokens=8, grammar={"type": "regex", "value": "(yes|no)"})
    assert answer in ("yes", "no")
