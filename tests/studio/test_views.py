"""Embeddings and text-to-speech Playgrounds (htmx POSTs), the page, and the templates the model card includes."""

from __future__ import annotations

import base64
import io
import json
import re
import wave
from pathlib import Path

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from inference import ModelSpec

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def owner_client(client, user):
    client.force_login(user)
    return client


def post_embeddings(client, text: str, model_id: str = "fake-embed", **headers: str):  # noqa: ANN201
    return client.post(reverse("studio:embeddings", args=[model_id]), {"input": text}, **headers)


def post_speech(client, text: str, speed: str = "1", model_id: str = "fake-tts", **headers: str):  # noqa: ANN201
    return client.post(reverse("studio:speech", args=[model_id]), {"input": text, "speed": speed}, **headers)


def test_embeddings_show_vectors_and_a_similarity_heatmap(fake_pool, owner_client):
    response = post_embeddings(owner_client, "a cat\n\n  a dog  \nthe stock market\n", **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # the partial only
    assert html.count('class="heat') == 9  # 3 texts: every pair
    assert html.count(">1.000</td>") >= 3  # a text is identical to itself
    assert re.search(r'style="background-color: rgba\([\d, .]+\)"', html)
    assert "8 dimensions" in html
    assert fake_pool.workers["fake-embed"].engine.calls == [["a cat", "a dog", "the stock market"]]


def test_embeddings_json_download_holds_the_full_vectors(fake_pool, owner_client):
    html = post_embeddings(owner_client, "one\ntwo", **HTMX).content.decode()
    url = re.search(r'href="data:application/json;base64,([^"]+)" download="embeddings.json"', html).group(1)
    document = json.loads(base64.b64decode(url))
    assert [d["input"] for d in document["data"]] == ["one", "two"]
    assert all(len(d["embedding"]) == 8 for d in document["data"])


def test_embedded_text_is_escaped(fake_pool, owner_client):
    html = post_embeddings(owner_client, "<script>alert(1)</script>", **HTMX).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("text", "model_id", "message"),
    [
        ("   \n  \n", "fake-embed", "Enter at least one text"),
        ("\n".join(f"text {n}" for n in range(33)), "fake-embed", "the limit is 32"),
        ("hello", "no-such-model", "does not exist"),
        ("hello", "fake-tts", "serves text-to-speech (/v1/audio/speech), not the embeddings Playground"),
    ],
)
def test_bad_embeddings_input_gets_a_clear_message(fake_pool, owner_client, text, model_id, message):
    response = post_embeddings(owner_client, text, model_id=model_id, **HTMX)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'class="heat' not in response.content.decode()


def test_plain_post_renders_the_whole_page(fake_pool, owner_client):
    response = post_embeddings(owner_client, "one\ntwo")
    assert response.status_code == 200
    assert "<html" in response.content.decode()
    assert response.content.decode().count('class="heat') == 4


def test_plain_post_for_an_unknown_model_is_404(fake_pool, owner_client):
    assert post_embeddings(owner_client, "hi", model_id="no-such-model").status_code == 404


def test_speech_returns_a_playable_wav(fake_pool, owner_client):
    response = post_speech(owner_client, "Hello there.", speed="2", **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    match = re.search(r'<audio controls src="data:audio/wav;base64,([^"]+)"', html)
    assert match
    assert 'download="speech.wav"' in html
    with wave.open(io.BytesIO(base64.b64decode(match.group(1)))) as wav:
        assert wav.getframerate() == 16000
        assert wav.getnframes() == int(len("Hello there.") * 0.05 / 2 * 16000)  # speed 2 halves the length


@pytest.mark.parametrize(
    ("text", "speed", "message"),
    [
        ("   ", "1", "Enter some text to speak."),
        ("Hi", "4.5", "speed must be a number from 0.25 to 4 (got 4.5)"),
        ("Hi", "0.1", "speed must be a number from 0.25 to 4 (got 0.1)"),
        ("Hi", "fast", "speed must be a number from 0.25 to 4."),
        ("x" * 1001, "1", "at most 1000 characters"),
    ],
)
def test_bad_speech_input_gets_a_clear_message(fake_pool, owner_client, text, speed, message):
    response = post_speech(owner_client, text, speed=speed, **HTMX)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "<audio" not in response.content.decode()


def test_speech_with_a_speech_to_text_model_is_refused(fake_pool, owner_client):
    response = post_speech(owner_client, "Hi", model_id="fake-stt", **HTMX)
    assert "serves speech-to-text (/v1/audio/transcriptions), not the text-to-speech" in response.content.decode()


def test_speed_limits_are_accepted(fake_pool, owner_client):
    for speed in ("0.25", "4", ""):
        assert "<audio controls" in post_speech(owner_client, "Hi", speed=speed, **HTMX).content.decode()


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("studio:embeddings", ["fake-embed"]),
        ("studio:speech", ["fake-tts"]),
        ("studio:playground", ["fake-stt"]),
    ],
)
def test_login_required(fake_pool, client, name, args):
    url = reverse(name, args=args)
    response = client.post(url, {"input": "hi"}) if name != "studio:playground" else client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize(
    ("model_id", "marker"),
    [("fake-stt", "data-stt"), ("fake-embed", 'name="input"'), ("fake-tts", 'name="speed"')],
)
def test_playground_page_renders_for_each_task(fake_pool, owner_client, model_id, marker):
    html = owner_client.get(reverse("studio:playground", args=[model_id])).content.decode()
    assert marker in html
    assert 'id="params"' in html
    assert "data-get-code" in html


def test_playground_page_for_a_chat_or_unknown_model_is_404(fake_pool, owner_client):
    assert owner_client.get(reverse("studio:playground", args=["fake-chat"])).status_code == 404
    assert owner_client.get(reverse("studio:playground", args=["nope"])).status_code == 404


def test_speech_to_text_page_offers_languages_and_translation(fake_pool, owner_client):
    html = owner_client.get(reverse("studio:playground", args=["fake-stt"])).content.decode()
    assert '<option value="translate">' in html
    assert '<option value="es">Spanish (es)</option>' in html
    assert "js/speech.js" in html


def english_only_spec() -> ModelSpec:
    return ModelSpec(
        id="tiny.en",
        name="Tiny EN",
        task="speech-to-text",
        engine="fake",
        path=Path("/nonexistent"),
        capabilities=("transcribe", "english-only"),
    )


def test_card_include_works_with_only_spec_in_context(fake_pool, rf, user):
    """The model card includes the template with spec, user and request only."""
    request = rf.get("/models/tiny.en/?tab=playground")
    request.user = user
    html = render_to_string("studio/_stt.html", {"spec": english_only_spec(), "user": user}, request=request)
    assert 'value="translate"' not in html  # English-only: no translation offered
    assert 'name="language"' in html
    assert 'data-model="tiny.en"' in html


def test_english_only_model_refuses_translation_and_other_languages():
    from playground.studio.forms import TranscribeForm

    spec = english_only_spec()
    form = TranscribeForm({"task": "translate", "language": "es"}, spec=spec)
    assert not form.is_valid()
    assert "English-only" in str(form.errors["task"])
    assert "English-only" in str(form.errors["language"])
    assert TranscribeForm({"task": "", "language": "EN"}, spec=spec).is_valid()
