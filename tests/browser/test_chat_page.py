"""The chat and completion Playgrounds in a real browser, against the real models."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot


def test_chat_streams_with_changed_sliders_and_stop_cancels(page: Page):
    page.goto("/models/smollm2-135m-instruct/?tab=playground")
    page.locator("#id_temperature_range").fill("0")  # the slider moves its number box
    expect(page.locator("#id_temperature")).to_have_value("0")
    page.fill("#id_max_tokens", "40")
    page.fill("#chat-system", "You are a helpful assistant.")
    page.fill("#chat-input", "What is the capital of France?")
    page.press("#chat-input", "Enter")

    reply = page.locator(".msg-assistant").last
    expect(reply.locator(".msg-meta")).to_contain_text("finish: stop", timeout=60_000)
    expect(reply.locator(".msg-body")).to_contain_text("Paris")
    expect(reply.locator(".msg-meta")).to_contain_text("tok/s")
    screenshot(page, "chat")

    page.fill("#id_max_tokens", "900")  # with the conversation so far, well within the context
    page.fill("#id_temperature", "0.8")
    page.fill("#chat-input", "Write a very long story about a dragon.")
    page.press("#chat-input", "Enter")
    streaming = page.locator(".msg-assistant.streaming .msg-body")
    expect(streaming).not_to_be_empty(timeout=60_000)  # tokens appear while the reply is generated
    page.click("#chat-stop")
    expect(page.locator(".msg-assistant").last.locator(".msg-meta")).to_contain_text("finish: cancelled")

    # Both replies are in the user's usage ledger, the stopped one included.
    page.goto("/models/smollm2-135m-instruct/?tab=usage")
    expect(page.locator("#tab-body")).to_contain_text("cancelled")
    screenshot(page, "usage-tab")


def test_completion_view_continues_a_prompt(page: Page):
    page.goto("/models/gemma-3-270m/?tab=playground")
    page.fill("#id_max_tokens", "12")
    page.fill("#completion-prompt", "Once upon a time")
    page.click("#completion-send")
    expect(page.locator("#completion-output .msg-meta")).to_contain_text("finish: length", timeout=60_000)
    expect(page.locator("#completion-output .msg-body")).not_to_be_empty()
    screenshot(page, "completion")


def test_model_markdown_renders_code_and_lists_but_never_html(page: Page):
    page.goto("/models/smollm2-135m-instruct/?tab=playground")
    page.wait_for_function("() => typeof window.renderMarkdownInto === 'function'")
    text = (
        "**Bold** and `code`\n\n- one\n- two\n\n```python\nprint('<b>hi</b>')\n```\n"
        '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    )
    html = page.evaluate(
        """(text) => {
            const box = document.createElement('div');
            document.body.appendChild(box);
            window.renderMarkdownInto(box, text);
            return box.innerHTML;
        }""",
        text,
    )
    assert "<strong>Bold</strong>" in html and "<code>code</code>" in html and "<li>one</li>" in html
    assert "<img" not in html and "<script" not in html and "&lt;img" in html
    assert page.evaluate("window.pwned") is None


def test_dark_theme_and_phone_width(page: Page):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/models/smollm2-135m-instruct/?tab=playground")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.click("[data-theme-toggle]")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert light != dark
    page.reload()  # the choice is remembered
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == dark
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # no sideways scrolling
    screenshot(page, "chat-phone-dark")
