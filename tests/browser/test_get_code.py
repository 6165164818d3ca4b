"""Get Code is the Playground, in a real browser against the real SmolLM2: a system prompt, parameters and a draft
set in the Playground reach the Get Code tab; the tab switch back keeps all of them; the snippet, copied from the
page and run as copied (with a token made on the tokens page), answers exactly as the Playground did at
temperature 0; with a conversation, the panel's Get Code button carries its history."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import CSP_REPORT

MODEL = "smollm2-135m-instruct"
CHAT = f"/models/{MODEL}/?tab=playground"
REPLY = 60_000  # ms: a reply of the real model on a busy 2-core machine
SYSTEM = "You are a geography teacher. Answer in one short sentence."


@contextmanager
def signed_up(browser: Browser, site: str, prefix: str) -> Iterator[Page]:
    """A page logged in as a new user of its own: what these tests save (presets, remembered settings) must not
    reach the other browser tests' user. Fails on any Content-Security-Policy violation, as `page` does."""
    context = browser.new_context(base_url=site, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if CSP_REPORT in message.text else None)
    page.set_default_timeout(30_000)
    password = "pw-" + secrets.token_urlsafe(12)
    page.goto("/accounts/signup/")
    page.fill("input[name=username]", f"{prefix}-{secrets.token_hex(4)}")
    page.fill("input[name=password1]", password)
    page.fill("input[name=password2]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(site + "/")
    try:
        yield page
    finally:
        context.close()
    assert violations == [], "the pages broke the Content-Security-Policy (playground/settings.py, SECURE_CSP)"


@pytest.fixture
def own_page(browser: Browser, site: str) -> Iterator[Page]:
    with signed_up(browser, site, "get-code") as page:
        yield page


def open_playground(page: Page, url: str = CHAT) -> None:
    page.goto(url)
    page.wait_for_selector("html[data-playground-state=ready]", state="attached")


def create_token(page: Page) -> str:
    page.goto("/tokens/")
    page.fill("input[name=label]", "get code test")
    page.click("form.token-create button[type=submit]")
    return page.inner_text("#new-token-value").strip()


def copy_snippet(page: Page, language: str) -> str:
    """Pick the language, press its Copy button and read the clipboard, as a user pastes it."""
    expect(page.locator("#code")).to_have_attribute("data-state", "playground")  # the Playground's state is in
    page.click(f"[data-code-lang={language}]")
    button = page.locator(f"#code-{language} button.copy")
    button.click()
    expect(button).to_have_text("Copied")
    code = page.evaluate("() => navigator.clipboard.readText()")
    assert code == page.inner_text(f"#snippet-{language}")
    return code


def run_as_copied(code: str, token: str, tmp_path: Path) -> str:
    """The snippet with the token pasted in for YOUR_API_TOKEN, run with this venv's Python (requests, openai)."""
    assert code.count("YOUR_API_TOKEN") == 1
    script = tmp_path / "example.py"
    script.write_text(code.replace("YOUR_API_TOKEN", token))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"the snippet failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def last_reply(page: Page) -> str:
    """The Playground's latest reply as saved, through the conversation's JSON export (its raw text, not the
    rendered Markdown)."""
    conversation = page.get_attribute("#chat-app", "data-conversation")
    assert conversation
    response = page.request.get(f"/chat/{conversation}/export.json")
    assert response.ok
    messages = json.loads(response.text())["messages"]
    assert messages[-1]["role"] == "assistant"
    return messages[-1]["content"]


def test_get_code_reproduces_the_playground_and_the_tab_switch_keeps_its_state(own_page: Page, tmp_path: Path):
    page = own_page
    token = create_token(page)
    open_playground(page)
    page.fill("#chat-system", SYSTEM)
    page.fill("#id_temperature", "0")
    page.fill("#id_max_tokens", "24")
    page.fill("#id_top_k", "30")
    page.fill("#id_seed", "5")
    page.fill("#chat-input", "What is the capital of France?")

    # The card's Get Code tab, not only the panel's button, shows the Playground's state.
    page.click("nav.tabs [data-tab=code]")
    page.wait_for_url("**/?tab=code")
    code = copy_snippet(page, "python")
    assert SYSTEM in code and "What is the capital of France?" in code
    assert '"temperature": 0.0,' in code and '"max_tokens": 24,' in code and '"top_k": 30,' in code
    assert '"seed": 5,' in code
    expect(page.locator("#code")).to_contain_text("with the settings currently in the Playground")

    # Back to the Playground: the system prompt, the parameters and the draft are still there.
    page.click("nav.tabs [data-tab=playground]")
    page.wait_for_url(re.compile(r"\?tab=playground"))
    page.wait_for_selector("html[data-playground-state=ready]", state="attached")
    expect(page.locator("#chat-system")).to_have_value(SYSTEM)
    expect(page.locator("#id_temperature")).to_have_value("0")
    expect(page.locator("#id_temperature_range")).to_have_value("0")
    expect(page.locator("#id_max_tokens")).to_have_value("24")
    expect(page.locator("#id_top_k")).to_have_value("30")
    expect(page.locator("#id_seed")).to_have_value("5")
    expect(page.locator("#chat-input")).to_have_value("What is the capital of France?")

    expect(page.locator("#chat-send")).to_be_enabled()  # the socket is open
    page.press("#chat-input", "Enter")
    reply = page.locator(".msg-assistant").last
    expect(reply.locator(".msg-meta")).to_contain_text("finish:", timeout=REPLY)
    expect(page.locator("#chat-export")).to_be_visible()  # the conversation exists now: it can be exported
    playground_reply = last_reply(page)
    assert playground_reply.strip()
    assert run_as_copied(code, token, tmp_path).strip() == playground_reply.strip()

    # A second turn; then the panel's Get Code button with nothing being written: the history up to the last
    # message, which the openai SDK snippet sends and the model answers exactly as it did here.
    page.fill("#chat-input", "And the capital of Germany?")
    page.press("#chat-input", "Enter")
    expect(page.locator(".msg-assistant").nth(1).locator(".msg-meta")).to_contain_text("finish:", timeout=REPLY)
    second_reply = last_reply(page)
    page.click("[data-get-code]")
    page.wait_for_url("**/?tab=code")
    expect(page.locator("#code-history-note")).to_contain_text("the conversation so far (3 messages)")
    code = copy_snippet(page, "openai")
    assert "And the capital of Germany?" in code and "client.chat.completions.create(" in code
    assert run_as_copied(code, token, tmp_path).strip() == second_reply.strip()

    # And back again: the conversation is reopened with its settings.
    page.click("nav.tabs [data-tab=playground]")
    page.wait_for_url(re.compile(r"\?tab=playground"))
    page.wait_for_selector("html[data-playground-state=ready]", state="attached")
    expect(page.locator(".msg-assistant")).to_have_count(2)
    expect(page.locator("#chat-system")).to_have_value(SYSTEM)
    expect(page.locator("#id_seed")).to_have_value("5")
    expect(page.locator("#chat-export")).to_be_visible()

    # Someone else in the same browser tab after a log-out starts clean: nothing of this user's state is shown.
    page.click("#chat-new")
    page.wait_for_url("**/?tab=playground")
    page.wait_for_selector("html[data-playground-state=ready]", state="attached")
    page.fill("#chat-system", "my own system prompt")
    page.fill("#chat-input", "a draft of mine")
    page.get_by_role("button", name="Log out").click()
    password = "pw-" + secrets.token_urlsafe(12)
    page.goto("/accounts/signup/")
    page.fill("input[name=username]", f"get-code-next-{secrets.token_hex(4)}")
    page.fill("input[name=password1]", password)
    page.fill("input[name=password2]", password)
    page.click("main button[type=submit]")
    open_playground(page)
    expect(page.locator("#chat-input")).to_have_value("")
    expect(page.locator("#chat-system")).to_have_value("")
    assert not page.evaluate("() => Object.values(sessionStorage).some((v) => v.includes('a draft of mine'))")
