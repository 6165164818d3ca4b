"""The Compare view in a real browser, against real models: three panes with different models streaming at once,
Stop, "Use this one" continuing in the chat Playground, and the page at phone width."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.browser.conftest import screenshot
from tests.livesite import live_site

# The catalog ships one chat model; this site adds two more ids served from the same SmolLM2 weights, each its own
# engine and worker with its own defaults and prices, so that three panes compare three catalog models at once.
EXTRA_CATALOG = """
[[model]]
id = "smollm2-greedy"
name = "SmolLM2 135M (greedy)"
task = "text-to-text"
path = "smollm2-135m-instruct.Q4_1.gguf"
n_ctx = 2048
prices = { input_per_million_tokens = 0.5, output_per_million_tokens = 1.0 }
defaults = { temperature = 0.0, max_tokens = 64 }

[[model]]
id = "smollm2-creative"
name = "SmolLM2 135M (creative)"
task = "text-to-text"
path = "smollm2-135m-instruct.Q4_1.gguf"
n_ctx = 2048
prices = { input_per_million_tokens = 1.0, output_per_million_tokens = 2.0 }
defaults = { temperature = 1.0, top_p = 0.95, max_tokens = 64 }
"""
MODELS = ["smollm2-135m-instruct", "smollm2-greedy", "smollm2-creative"]
LONG = 60_000  # ms: the first request on a model loads it
COUNT = "Count from 1 to 100, separated by commas."


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's own live site: the real catalog plus the two extra chat models above."""
    workdir = tmp_path_factory.mktemp("compare-site")
    catalog = workdir / "compare.toml"
    catalog.write_text(EXTRA_CATALOG)
    with live_site(workdir, PLAYGROUND_CATALOG=str(catalog)) as base:
        yield base


def record_frames(page: Page) -> list[tuple[float, dict[str, Any]]]:
    """Every frame the page's compare socket receives, with the time it arrived."""
    frames: list[tuple[float, dict[str, Any]]] = []

    def on_socket(socket: WebSocket) -> None:
        if socket.url.endswith("/ws/compare/"):
            socket.on("framereceived", lambda payload: frames.append((time.monotonic(), json.loads(payload))))

    page.on("websocket", on_socket)
    return frames


def set_pane(page: Page, index: int, model: str, **params: str) -> None:
    page.select_option(f"#pane-{index}-model", model)
    if params:
        page.click(f"#pane-{index} .compare-params summary")
        for name, value in params.items():
            page.fill(f"#id_pane-{index}-{name}", value)


def send(page: Page, message: str) -> None:
    page.fill("#compare-input", message)
    page.click("#compare-send")


def wait_all_done(page: Page, panes: int) -> None:
    for index in range(panes):
        expect(page.locator(f"#pane-{index} [data-meta]")).to_contain_text("finish:", timeout=LONG)
    expect(page.locator("#compare-send")).to_be_enabled()


def test_three_panes_with_different_models_stream_at_once_and_one_continues_as_a_chat(page: Page):
    frames = record_frames(page)
    page.goto("/compare/")
    expect(page.locator("[data-pane]:visible")).to_have_count(2)
    page.click("#compare-add")
    expect(page.locator("[data-pane]:visible")).to_have_count(3)
    expect(page.locator("#compare")).to_have_attribute("data-connected", "true")
    set_pane(page, 0, MODELS[0], temperature="0", max_tokens="120")
    set_pane(page, 1, MODELS[1], max_tokens="120")
    set_pane(page, 2, MODELS[2], max_tokens="120", seed="11")
    expect(page.locator("#pane-0 [data-params-summary]")).to_contain_text("temperature 0")
    page.fill("#compare-system", "You are a helpful assistant.")

    send(page, "Say hello.")  # loads the three models (at once, each on its own worker)
    wait_all_done(page, 3)

    # A reply long enough (120 tokens) that the fastest pane is still streaming when the slowest has started, on a
    # slow 2-core host too: 48 tokens took a pane 0.29 s there, while its neighbours were still reading the prompt.
    frames.clear()
    send(page, COUNT)
    expect(page.locator("#compare-stop")).to_be_visible()
    wait_all_done(page, 3)

    # At once: every pane had streamed its first token before any pane was done.
    firsts = {i: min(t for t, f in frames if f.get("pane") == i and f["type"] == "token") for i in range(3)}
    dones = {i: next(t for t, f in frames if f.get("pane") == i and f["type"] == "done") for i in range(3)}
    assert max(firsts.values()) < min(dones.values()), (firsts, dones)
    done = {f["pane"]: f for _, f in frames if f["type"] == "done"}
    assert [done[i]["model"] for i in range(3)] == MODELS
    for index in range(3):
        assert done[index]["usage"]["completion_tokens"] > 0 and float(done[index]["cost"]) > 0
        meta = page.locator(f"#pane-{index} [data-meta]")
        for figure in ("prompt +", "completion tokens", "TTFT", "tok/s", "cost $", "finish: "):
            expect(meta).to_contain_text(figure)
        expect(page.locator(f"#pane-{index} [data-body]")).not_to_be_empty()
        expect(page.locator(f"#pane-{index} [data-use]")).to_be_enabled()
        page.click(f"#pane-{index} .compare-params summary")  # fold the parameters: their summary line stays
    expect(page.locator("#pane-2 [data-params-summary]")).to_have_text("max tokens 120 · seed 11")
    screenshot(page, "compare")

    # Use the second pane: its exchange opens as a saved conversation in the chat Playground.
    shown = page.locator("#pane-1 [data-body]").inner_text()
    page.click("#pane-1 [data-use]")
    page.wait_for_url(f"**/models/{MODELS[1]}/?tab=playground&conversation=*")
    expect(page.locator("#chat-model")).to_have_value(MODELS[1])
    expect(page.locator("#chat-system")).to_have_value("You are a helpful assistant.")
    expect(page.locator(".msg-user .msg-body")).to_have_text(COUNT)
    assistant = page.locator(".msg-assistant .msg-body")
    expect(assistant).to_have_count(1)
    assert assistant.inner_text() == shown  # the same reply, through the same Markdown renderer
    tokens = done[1]["usage"]["completion_tokens"]
    expect(page.locator(".msg-assistant .msg-meta")).to_contain_text(f"+ {tokens} completion tokens")


def test_stop_stops_every_pane(page: Page):
    page.goto("/compare/?panes=3")
    expect(page.locator("#compare")).to_have_attribute("data-connected", "true")
    for index, model in enumerate(MODELS):
        set_pane(page, index, model, max_tokens="900")
    send(page, "Write a very long story about a dragon and a lighthouse keeper.")
    for index in range(3):
        expect(page.locator(f"#pane-{index} [data-body]")).not_to_be_empty(timeout=LONG)
    page.click("#compare-stop")
    for index in range(3):
        expect(page.locator(f"#pane-{index} [data-meta]")).to_contain_text("finish: cancelled", timeout=15_000)
    expect(page.locator("#compare-send")).to_be_enabled()
    expect(page.locator("#compare-stop")).to_be_hidden()


def test_the_page_at_phone_width_stacks_the_panes_without_sideways_scrolling(page: Page):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/compare/?panes=4")
    expect(page.locator("[data-pane]:visible")).to_have_count(4)
    page.click("#pane-0 .compare-params summary")  # the open parameters fit too
    boxes = [page.locator(f"#pane-{index}").bounding_box() for index in range(4)]
    assert all(box is not None for box in boxes)
    assert len({round(box["x"]) for box in boxes if box}) == 1  # one column
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "compare-phone")
