"""The catalog, Get Code, and the speech, embeddings and voice Playgrounds in a real browser."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from inference.speech import PiperEngine
from tests.browser.conftest import screenshot
from tests.livesite import REPO

SENTENCE = "The quick brown fox jumps over the lazy dog."


def test_catalog_filters_and_searches(page: Page):
    expect(page.locator("article.model-card")).to_have_count(6)
    screenshot(page, "catalog")
    page.click("a[data-filter=speech-to-text]")
    expect(page.locator("article.model-card")).to_have_count(2)
    page.goto("/")
    page.fill("#search", "gemma")
    expect(page.locator("article.model-card")).to_have_count(1)
    expect(page.locator("article.model-card h2")).to_have_text("Gemma 3 270M (base)")


def test_get_code_copies_a_snippet_with_the_real_base_url(page: Page, site: str):
    page.goto("/models/smollm2-135m-instruct/?tab=code")
    screenshot(page, "get-code")
    button = page.locator("button.copy[data-copy-target='#snippet-curl']")
    button.click()
    expect(button).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert f"{site}/v1/chat/completions" in copied
    assert "smollm2-135m-instruct" in copied and "YOUR_API_TOKEN" in copied


def test_transcribe_an_uploaded_file(page: Page, tmp_path: Path):
    voice = PiperEngine(path=REPO / "var/models/piper-en-us-joe/en_US-joe-medium.onnx")
    audio = tmp_path / "fox.wav"
    audio.write_bytes(voice.synthesize(SENTENCE).wav)
    page.goto("/models/whisper-tiny.en/?tab=playground")
    page.set_input_files("#stt-file", str(audio))
    page.click("button[data-stt-start]")
    rows = page.locator("[data-stt-segments] tr")
    expect(rows.first).to_contain_text("fox", timeout=60_000)
    expect(page.locator("[data-stt-downloads]")).to_be_visible()
    screenshot(page, "speech-to-text")


def test_embeddings_show_a_similarity_heatmap(page: Page):
    page.goto("/models/all-minilm-l6-v2/?tab=playground")
    page.fill("#embeddings-input", "A man is eating food.\nA man is eating a piece of bread.\nThe sky is blue.")
    page.click("#params button[type=submit]")
    expect(page.locator("td.heat")).to_have_count(9, timeout=60_000)
    screenshot(page, "embeddings")


def test_synthesized_speech_plays(page: Page):
    page.goto("/models/piper-en-us-joe/?tab=playground")
    page.fill("#tts-input", SENTENCE)
    page.click("#params button[type=submit]")
    audio = page.locator("#tts-result audio")
    expect(audio).to_have_count(1, timeout=60_000)
    page.wait_for_function("() => document.querySelector('#tts-result audio').readyState >= 1")
    duration = audio.evaluate("a => a.duration")
    assert 1.0 < duration < 10.0
    audio.evaluate("a => a.play()")
    page.wait_for_function("() => document.querySelector('#tts-result audio').currentTime > 0.2")
    screenshot(page, "text-to-speech")
