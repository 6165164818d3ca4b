"""Context management in the chat Playground, in a real browser against the real SmolLM2 served with a small
context (512 tokens), so that a few exchanges fill it: a 12-exchange conversation that keeps answering with the
oldest turns left out, the context meter and the Max tokens slider following the space left, and a message
refused for length kept in the composer (never saved)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, screenshot
from tests.livesite import live_site

SMALL = "smollm2-small-context"
# The catalog's SmolLM2 weights under another id, served with a context of 512 tokens (one request at a time).
EXTRA_CATALOG = f"""
[[model]]
id = "{SMALL}"
name = "SmolLM2 135M (512-token context)"
task = "text-to-text"
path = "smollm2-135m-instruct.Q4_1.gguf"
context_length = 8192
n_ctx = 512
defaults = {{ temperature = 0.0, max_tokens = 32 }}
tools = {{ template = "injected", open = "<tool_call>", close = "</tool_call>" }}
"""
CHAT = f"/models/{SMALL}/?tab=playground"
REPLY = 60_000  # ms: a reply of the real model on a busy 2-core machine (the first one loads it)
TOPICS = [
    "the sea", "mountains", "rivers", "forests", "deserts", "the moon",
    "the sun", "rain", "snow", "wind", "clouds", "stars",
]  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's own live site: the real catalog plus SmolLM2 with a 512-token context."""
    workdir = tmp_path_factory.mktemp("context-site")
    catalog = workdir / "small.toml"
    catalog.write_text(EXTRA_CATALOG)
    with live_site(workdir, PLAYGROUND_CATALOG=str(catalog)) as base:
        yield base


def send(page: Page, text: str) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")
    reply = page.locator(".msg-assistant").last
    expect(reply.locator(".msg-meta")).to_contain_text("finish:", timeout=REPLY)
    expect(page.locator("#chat-send")).to_be_enabled()


def test_a_twelve_exchange_conversation_keeps_answering_with_the_oldest_turns_left_out(page: Page):
    page.goto(CHAT)
    expect(page.locator("#chat-overflow")).to_have_value("drop_oldest")  # the default
    expect(page.locator("#context-text")).to_contain_text("of 512", timeout=REPLY)  # the server's count
    page.fill("#id_max_tokens", "32")
    page.fill("#chat-system", "You are a concise assistant.")
    for n, topic in enumerate(TOPICS, start=1):
        send(page, f"Exchange {n}: write two sentences about {topic}, with as much detail as you can.")
    replies = page.locator(".msg-assistant")
    expect(replies).to_have_count(12)
    metas = [replies.nth(i).locator(".msg-meta").inner_text() for i in range(12)]
    assert all("finish: stop" in m or "finish: length" in m for m in metas), metas
    assert "left out" not in metas[0]
    assert "oldest messages left out to fit the context" in metas[-1], metas  # it said how many
    first_dropped = next(i for i, m in enumerate(metas) if "left out" in m)
    assert all("left out" in m for m in metas[first_dropped:])  # and kept answering from then on
    # Everything is still in the conversation: only the prompts left the oldest turns out.
    expect(page.locator(".msg-user")).to_have_count(12)

    # The meter reads the next message against the context and says what will be left out.
    page.fill("#chat-input", "And one more about the sky.")
    expect(page.locator("#context-text")).to_contain_text("Message:")
    expect(page.locator("#context-text")).to_contain_text("oldest messages will be left out")
    assert page.locator("#context-bar").get_attribute("data-state") == "warn"
    # The Max tokens slider offers only what a prompt can use: less than the whole context.
    room = int(page.locator("#id_max_tokens_range").get_attribute("max") or "0")
    assert 32 < room < 512
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    # The screen around the composer (the whole page is 24 messages long).
    page.evaluate("() => document.getElementById('chat-form').scrollIntoView({block: 'end'})")
    page.screenshot(path=str(SCREENSHOTS / "chat-context-phone.png"))

    page.reload()  # all 24 messages are saved, each reply with what it left out
    expect(page.locator(".msg")).to_have_count(24)
    expect(page.locator(".msg-assistant").last.locator(".msg-meta")).to_contain_text("left out")


def test_a_message_refused_for_length_stays_in_the_composer_and_is_not_saved(page: Page):
    page.goto(CHAT)
    page.fill("#id_max_tokens", "32")
    send(page, "Hello! Who are you?")
    send(page, "What can you do for me?")
    page.select_option("#chat-overflow", "refuse")
    long = "Please summarise this list: " + ", ".join(["apples and pears"] * 100)
    page.fill("#chat-input", long)
    expect(page.locator("#context-text")).to_contain_text("it would be refused", timeout=REPLY)
    assert page.locator("#context-bar").get_attribute("data-state") == "over"
    page.press("#chat-input", "Enter")
    expect(page.locator("#chat-status")).to_contain_text("context", timeout=REPLY)  # the engine's refusal
    expect(page.locator("#chat-input")).to_have_value(long)  # kept to edit or send again
    expect(page.locator(".msg")).to_have_count(4)  # not added to the conversation
    screenshot(page, "chat-refused")

    # Not saved: the conversation reopens as it was, so the next message is not refused for this one.
    page.reload()
    expect(page.locator(".msg")).to_have_count(4)
    expect(page.locator("#chat-overflow")).to_have_value("refuse")  # the setting is the conversation's
    # With the oldest turns left out the same message fits and is answered.
    page.select_option("#chat-overflow", "drop_oldest")
    page.fill("#chat-input", long)
    expect(page.locator("#context-text")).to_contain_text("will be left out", timeout=REPLY)
    page.press("#chat-input", "Enter")
    reply = page.locator(".msg-assistant").last
    expect(reply.locator(".msg-meta")).to_contain_text("left out to fit the context", timeout=REPLY)
    expect(page.locator(".msg")).to_have_count(6)
    expect(page.locator("#chat-input")).to_have_value("")
