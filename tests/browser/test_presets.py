"""Presets and remembered settings in a real browser, against the real SmolLM2: a preset saved from the panel,
applied, and deleted; a new chat starting from the settings of the latest reply; a conversation reopened from the
list with its own parameters; the list searched."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_get_code import REPLY, open_playground, signed_up


@pytest.fixture
def own_page(browser: Browser, site: str) -> Iterator[Page]:
    with signed_up(browser, site, "presets") as page:
        yield page


def number(page: Page, selector: str) -> float:
    """A panel value as rendered by the server (0.0 and 0 alike)."""
    return float(page.input_value(selector))


def send_and_wait(page: Page, text: str) -> None:
    expect(page.locator("#chat-send")).to_be_enabled()  # the socket is open
    count = page.locator(".msg-assistant").count()
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")
    expect(page.locator(".msg-assistant").nth(count).locator(".msg-meta")).to_contain_text("finish:", timeout=REPLY)


def test_a_preset_is_saved_applied_and_deleted(own_page: Page):
    page = own_page
    open_playground(page)
    defaults = json.loads(page.get_attribute("#presets", "data-defaults") or "{}")
    page.fill("#chat-system", "You are terse.")
    page.fill("#id_temperature", "0.3")
    page.fill("#id_max_tokens", "40")
    page.fill("#id_stop", "END")
    page.fill("#preset-name", "Terse")
    page.click("#preset-save")
    expect(page.locator("#preset-status")).to_have_text("Saved preset “Terse”.")
    expect(page.locator("#preset-pick option:checked")).to_have_text("Terse")
    page.fill("#preset-name", "")
    page.click("#preset-save")
    expect(page.locator("#preset-status")).to_have_text("Give the preset a name.")

    # Values changed, then the preset picked again: its system prompt and parameters are back.
    page.fill("#chat-system", "")
    page.fill("#id_temperature", "1.1")
    page.fill("#id_stop", "")
    page.select_option("#preset-pick", label="Terse")
    expect(page.locator("#chat-system")).to_have_value("You are terse.")
    expect(page.locator("#id_temperature")).to_have_value("0.3")
    expect(page.locator("#id_temperature_range")).to_have_value("0.3")
    expect(page.locator("#id_max_tokens")).to_have_value("40")
    expect(page.locator("#id_stop")).to_have_value("END")

    # The model's defaults are one pick away too.
    page.select_option("#preset-pick", "defaults")
    expect(page.locator("#id_temperature")).to_have_value(str(defaults["temperature"]))
    expect(page.locator("#id_stop")).to_have_value("")
    expect(page.locator("#preset-delete")).to_be_disabled()

    # Saved on the server: still offered after a reload, on another model's card too; deleted after a confirm.
    open_playground(page, "/models/gemma-3-270m/?tab=playground")
    expect(page.locator("#preset-pick option", has_text="Terse")).to_have_count(1)
    open_playground(page)
    page.select_option("#preset-pick", label="Terse")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#preset-delete")
    expect(page.locator("#preset-status")).to_have_text("Deleted preset “Terse”.")
    expect(page.locator("#preset-pick option", has_text="Terse")).to_have_count(0)
    page.reload()
    expect(page.locator("#preset-pick option", has_text="Terse")).to_have_count(0)

    # At phone width the panel fits without sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_new_chat_starts_from_the_last_settings_and_a_conversation_reopens_with_its_own(own_page: Page):
    page = own_page
    open_playground(page)
    page.fill("#chat-system", "Answer in one word.")
    page.fill("#id_temperature", "0")
    page.fill("#id_max_tokens", "8")
    send_and_wait(page, "Name a colour.")
    first = page.get_attribute("#chat-app", "data-conversation")

    # New chat: empty, but with the settings of the latest reply, not the catalog's defaults.
    page.click("#chat-new")
    page.wait_for_url("**/?tab=playground")
    page.wait_for_selector("html[data-playground-state=ready]", state="attached")
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.locator("#chat-system")).to_have_value("Answer in one word.")
    assert number(page, "#id_temperature") == 0 and number(page, "#id_max_tokens") == 8
    expect(page.locator("#chat-input")).to_have_value("")
    page.fill("#id_temperature", "0.9")
    page.fill("#id_max_tokens", "12")
    send_and_wait(page, "Name a fruit.")

    # The first conversation, found by searching the list and opened from it, comes back with its parameters.
    page.goto("/chat/")
    page.fill("#chat-search", "colour")
    expect(page.locator("#conversations tbody tr")).to_have_count(1)
    page.click(f"#conversation-{first} a")
    page.wait_for_selector("html[data-playground-state=ready]", state="attached")
    expect(page.locator("#chat-app")).to_have_attribute("data-conversation", str(first))
    assert number(page, "#id_temperature") == 0 and number(page, "#id_max_tokens") == 8  # not 0.9 and 12
    expect(page.locator("#chat-system")).to_have_value("Answer in one word.")
    expect(page.locator("#export-md")).to_have_attribute("href", f"/chat/{first}/export.md")
