"""Message actions in the chat Playground, in a real browser against the real SmolLM2: regenerate keeping the
earlier versions and ‹n/m› navigation, edit a message (answered on a new branch, the old one kept and shown
again), Continue a reply cut off by max tokens, delete."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import screenshot

CHAT = "/models/smollm2-135m-instruct/?tab=playground"
REPLY = 60_000  # ms: a reply of the real model on a busy 2-core machine


def wait_reply(page: Page) -> Locator:
    reply = page.locator(".msg-assistant").last
    expect(reply.locator(".msg-meta")).to_contain_text("finish:", timeout=REPLY)
    expect(page.locator("#chat-send")).to_be_enabled()
    return reply


def body(message: Locator) -> str:
    return message.locator(".msg-body").inner_text()


def test_regenerate_and_edit_keep_every_version_and_navigate_between_them(page: Page):
    page.goto(CHAT)
    page.fill("#id_temperature", "1.2")
    page.fill("#id_max_tokens", "24")
    page.fill("#chat-input", "Name a colour and say why you like it.")
    page.press("#chat-input", "Enter")
    first = body(wait_reply(page))

    # Regenerate keeps the first reply: ‹2/2›.
    page.locator(".msg-assistant").last.get_by_role("button", name="Generate this reply again").click()
    reply = wait_reply(page)
    expect(page.locator(".msg-assistant")).to_have_count(1)
    expect(reply.locator(".msg-version")).to_have_text("2/2")
    second = body(reply)
    previous = reply.get_by_role("button", name="Previous version")
    previous.focus()
    page.keyboard.press("Enter")  # from the keyboard; the focus stays on the version buttons
    reply = page.locator(".msg-assistant").last
    expect(reply.locator(".msg-version")).to_have_text("1/2")
    assert body(reply) == first
    expect(reply.get_by_role("button", name="Previous version")).to_be_disabled()
    expect(reply.get_by_role("button", name="Next version")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".msg-assistant").last.locator(".msg-version")).to_have_text("2/2")
    assert body(page.locator(".msg-assistant").last) == second

    # Edit the message: a new version of it, answered from there; the old branch is kept.
    user = page.locator(".msg-user").last
    user.get_by_role("button", name="Edit this message").click()
    editor = user.get_by_label("Edit your message")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("Name a colour and say why you like it.")
    editor.fill("Name a fruit.")
    editor.press("Enter")
    wait_reply(page)
    user = page.locator(".msg-user").last
    expect(user.locator(".msg-body")).to_have_text("Name a fruit.")
    expect(user.locator(".msg-version")).to_have_text("2/2")
    expect(page.locator(".msg-assistant").last.locator(".msg-versions")).to_have_count(0)  # a first reply
    screenshot(page, "chat-versions")

    # ‹1/2› on the message: the old branch, with the reply version last shown there.
    user.get_by_role("button", name="Previous version").click()
    expect(page.locator(".msg-user .msg-body")).to_have_text("Name a colour and say why you like it.")
    expect(page.locator(".msg-assistant .msg-version")).to_have_text("2/2")
    assert body(page.locator(".msg-assistant").last) == second
    page.reload()  # the branch shown is saved with the conversation
    expect(page.locator(".msg-user .msg-body")).to_have_text("Name a colour and say why you like it.")
    expect(page.locator(".msg-user .msg-version")).to_have_text("1/2")

    # A new message follows the branch shown.
    page.fill("#chat-input", "And a second one?")
    page.press("#chat-input", "Enter")
    wait_reply(page)
    expect(page.locator(".msg")).to_have_count(4)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_continue_appends_to_a_cut_off_reply_and_delete_removes_messages(page: Page):
    page.goto(CHAT)
    page.fill("#id_temperature", "0")
    page.fill("#id_max_tokens", "8")
    page.fill("#chat-input", "Write a long story about a dragon.")
    page.press("#chat-input", "Enter")
    reply = wait_reply(page)
    expect(reply.locator(".msg-meta")).to_contain_text("finish: length")
    expect(page.locator("#chat-status")).to_contain_text("Continue")
    start = body(reply)

    page.fill("#id_max_tokens", "16")
    reply.get_by_role("button", name="Continue this reply").click()
    reply = wait_reply(page)
    expect(page.locator(".msg-assistant")).to_have_count(1)  # the same reply, longer
    longer = body(reply)
    assert longer.startswith(start.rstrip()[:20]) and len(longer) > len(start)
    meta = reply.locator(".msg-meta").inner_text()
    completion = int(meta.split(" completion tokens")[0].rsplit(" ", 1)[-1])
    assert completion > 8  # both parts counted
    page.reload()
    assert body(page.locator(".msg-assistant").last) == longer  # saved as one reply

    # Delete the reply: the message is left unanswered, and Regenerate answers it.
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".msg-assistant").get_by_role("button", name="Delete this message").click()
    expect(page.locator(".msg-assistant")).to_have_count(0)
    page.reload()
    expect(page.locator(".msg")).to_have_count(1)
    page.click("#chat-regenerate")
    wait_reply(page)
    # Delete the message itself: its reply goes with it.
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".msg-user").get_by_role("button", name="Delete this message").click()
    expect(page.locator(".msg")).to_have_count(0)
    page.reload()
    expect(page.locator(".msg")).to_have_count(0)
