"""The chat Playground's Tools panel and JSON mode in a real browser, against the real SmolLM2 model: a tool call
shown as a card, its result typed and sent, the next reply; a JSON reply held to a schema."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

CHAT = "/models/smollm2-135m-instruct/?tab=playground"
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}
REPLY = 60_000  # ms: a reply of the real model on a busy 2-core machine


def open_tools(page: Page) -> None:
    page.goto(CHAT)
    page.fill("#id_temperature", "0")
    page.fill("#id_max_tokens", "40")
    page.click("#tools-panel > summary")
    expect(page.locator("#tools-json")).to_be_visible()


def test_a_tool_call_is_a_card_whose_typed_result_continues_the_chat(page: Page):
    open_tools(page)
    # The editor says what is wrong before anything is sent.
    page.fill("#tools-json", '[{"name": "get_weather",')
    expect(page.locator("#tools-check")).to_contain_text("not valid JSON")
    page.fill("#tools-json", '[{"name": "get weather"}]')
    expect(page.locator("#tools-check")).to_contain_text('Tool 1 (get weather): "name" must be 1 to 64 letters')
    page.fill("#chat-input", "What is the weather in Paris?")
    page.press("#chat-input", "Enter")
    expect(page.locator("#chat-status")).to_contain_text('"name" must be')  # refused here, nothing sent
    expect(page.locator(".msg")).to_have_count(0)

    # Bare {name, description, parameters} objects are wrapped; the picker offers the function by name.
    page.fill("#tools-json", json.dumps([WEATHER]))
    expect(page.locator("#tools-check")).to_have_text("1 function: get_weather")
    page.select_option("#tool-choice", "get_weather")
    page.press("#chat-input", "Enter")

    reply = page.locator(".msg-assistant").last
    expect(reply.locator(".msg-meta")).to_contain_text("finish: tool_calls", timeout=REPLY)
    card = reply.locator(".tool-call")
    expect(card.locator(".tool-call-name")).to_have_text("get_weather")
    arguments = json.loads(card.locator(".tool-call-args").inner_text())
    assert set(arguments) == {"location"}  # held to the function's parameters by the grammar
    expect(page.locator("#chat-status")).to_contain_text("The model called get_weather")

    # The result, typed and sent from the keyboard; the model answers in text now.
    page.select_option("#tool-choice", "none")
    result = reply.locator(".tool-result textarea")
    expect(reply.locator(".tool-result label")).to_have_text("Result of get_weather")
    result.fill('{"temperature": "18 C", "sky": "sunny"}')
    result.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator(".msg-tool .msg-body")).to_have_text('{"temperature": "18 C", "sky": "sunny"}')
    answer = page.locator(".msg-assistant").last
    expect(answer.locator(".msg-meta")).to_contain_text("finish:", timeout=REPLY)
    expect(answer.locator(".msg-meta")).not_to_contain_text("tool_calls")
    expect(answer.locator(".msg-body")).not_to_be_empty()
    expect(page.locator(".tool-results")).to_have_count(0)

    # Reopened: the conversation's tools, its choice, the card and the result are all back.
    page.reload()
    expect(page.locator("#tools-panel")).to_have_attribute("open", "")
    assert json.loads(page.input_value("#tools-json"))[0]["function"]["name"] == "get_weather"
    expect(page.locator("#tool-choice")).to_have_value("none")
    expect(page.locator(".tool-call .tool-call-name")).to_have_text("get_weather")
    expect(page.locator(".msg-tool")).to_contain_text("Result of get_weather")

    # At phone width the panel and the cards fit without sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_json_mode_gives_a_json_reply_and_server_refusals_are_shown(page: Page):
    open_tools(page)
    # Tools and a reply format together: the server refuses it, as /v1 does, and the page says so.
    page.fill("#tools-json", json.dumps([WEATHER]))
    page.select_option("#response-format", "json_object")
    page.fill("#chat-input", "Weather?")
    page.press("#chat-input", "Enter")
    expect(page.locator("#chat-status")).to_contain_text("response_format cannot be combined with tools")
    expect(page.locator("#tools-check")).to_contain_text("cannot be combined")
    expect(page.locator("#chat-input")).to_have_value("Weather?")  # given back to edit

    page.fill("#tools-json", "")
    page.select_option("#response-format", "json_schema")
    page.fill("#schema-json", '{"type": "object",')
    expect(page.locator("#schema-check")).to_contain_text("not valid JSON")
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}}, "required": ["city"]}
    page.fill("#schema-json", json.dumps(schema))
    expect(page.locator("#schema-check")).to_have_text("Valid JSON.")
    page.fill("#id_max_tokens", "60")
    page.fill("#id_temperature", "0")  # not the user's remembered settings from another test: greedy, the JSON ends
    page.fill("#chat-input", "Name the capital of France.")
    page.press("#chat-input", "Enter")
    reply = page.locator(".msg-assistant").last
    expect(reply.locator(".msg-meta")).to_contain_text("finish: stop", timeout=REPLY)
    data = json.loads(reply.locator(".msg-body").inner_text())
    assert isinstance(data, dict) and isinstance(data["city"], str)

    # Get Code carries the reply format.
    page.click("[data-get-code]")
    expect(page.locator("#snippet-openai")).to_contain_text('"type": "json_schema"')
    expect(page.locator("#snippet-openai")).to_contain_text("response_format=")
