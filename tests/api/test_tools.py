"""OpenAI tools on /v1/chat/completions with the fake engine: the grammar and the tool descriptions reach the
engine, calls come back (whole and streamed) with ids and finish_reason "tool_calls", histories with calls and
results are accepted, bad tool lists are 400s naming the field. The real models: tests/inference/test_tools_real.py
and the openai SDK against a live server: tests/api/test_openai_live.py."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from inference.tools import ToolFormat

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get current temperature for a given location.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
            "additionalProperties": False,
        },
    },
}
ASK = {"model": "fake-chat", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER]}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>'


async def post(client, body: Any, auth: dict[str, Any]):  # noqa: ANN001, ANN201
    return await client.post("/v1/chat/completions", json.dumps(body), content_type="application/json", **auth)


def engine(pool):  # noqa: ANN001, ANN201
    """The fake chat engine, loaded."""
    pool.call("fake-chat", lambda loaded: None)
    return pool.workers["fake-chat"].engine


async def test_a_required_call_comes_back_as_tool_calls(async_client, auth, fake_pool):
    engine(fake_pool).grammar_reply = CALL
    answer = await post(async_client, {**ASK, "tool_choice": "required"}, auth)
    assert answer.status_code == 200, answer.content
    choice = answer.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    seen = engine(fake_pool).calls[-1]
    assert "get_weather" in seen["grammar"] and seen["params"].grammar_trigger is None  # the whole reply
    assert "get_weather" in seen["messages"][0].content  # described in the system turn (SmolLM2's way)


async def test_auto_applies_the_grammar_from_the_opening_tag(async_client, auth, fake_pool):
    engine(fake_pool).grammar_reply = "Let me look. " + CALL
    answer = await post(async_client, ASK, auth)
    message = answer.json()["choices"][0]["message"]
    assert message["content"] == "Let me look." and message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert engine(fake_pool).calls[-1]["params"].grammar_trigger == "<tool_call>"


async def test_none_describes_no_tools_and_reads_no_calls(async_client, auth, fake_pool):
    answer = await post(async_client, {**ASK, "tool_choice": "none"}, auth)
    message = answer.json()["choices"][0]["message"]
    assert "tool_calls" not in message and message["content"].startswith("You said")
    seen = engine(fake_pool).calls[-1]
    assert seen["grammar"] is None and all("get_weather" not in m.content for m in seen["messages"])


async def test_a_named_choice_allows_only_that_function(async_client, auth, fake_pool):
    other = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    engine(fake_pool).grammar_reply = CALL
    choice = {"type": "function", "function": {"name": "get_weather"}}
    answer = await post(async_client, {**ASK, "tools": [WEATHER, other], "tool_choice": choice}, auth)
    assert answer.json()["choices"][0]["finish_reason"] == "tool_calls"
    grammar = engine(fake_pool).calls[-1]["grammar"]
    assert "get_weather" in grammar and "get_time" not in grammar and "{0," not in grammar  # one call


async def test_parallel_calls_and_a_repeated_call_ends_the_reply(async_client, auth, fake_pool):
    berlin = CALL.replace("Paris", "Berlin")
    engine(fake_pool).grammar_reply = "\n".join([CALL, berlin, CALL, CALL])
    engine(fake_pool).delay = 0.01  # a token at a time: the cancel arrives while it still generates
    answer = await post(async_client, {**ASK, "tool_choice": "required"}, auth)
    choice = answer.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    places = [json.loads(c["function"]["arguments"])["location"] for c in choice["message"]["tool_calls"]]
    assert places == ["Paris", "Berlin"]
    assert len({c["id"] for c in choice["message"]["tool_calls"]}) == 2
    assert engine(fake_pool).generated[-1] < len(engine(fake_pool).grammar_reply.split())  # stopped early
    single = await post(async_client, {**ASK, "tool_choice": "required", "parallel_tool_calls": False}, auth)
    assert single.status_code == 200 and "{0," not in engine(fake_pool).calls[-1]["grammar"]


async def test_a_call_cut_short_says_length(async_client, auth, fake_pool):
    engine(fake_pool).grammar_reply = CALL
    answer = await post(async_client, {**ASK, "tool_choice": "required", "max_tokens": 5}, auth)
    choice = answer.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


async def test_streamed_calls_come_as_openai_deltas(async_client, auth, fake_pool):
    engine(fake_pool).grammar_reply = "Checking. " + CALL
    answer = await post(async_client, {**ASK, "stream": True}, auth)
    assert answer.status_code == 200
    body = b"".join([chunk async for chunk in answer.streaming_content]).decode()
    chunks = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["index"] == 0 and calls[0]["id"].startswith("call_") and calls[0]["type"] == "function"
    assert calls[0]["function"] == {"name": "get_weather", "arguments": ""}
    assert all(set(c) == {"index", "function"} and set(c["function"]) == {"arguments"} for c in calls[1:])
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"location": "Paris"}
    assert "".join(d.get("content") or "" for d in deltas).strip() == "Checking."
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_history_with_calls_and_results_reaches_the_model(async_client, auth, fake_pool):
    function = {"name": "get_weather", "arguments": '{"location":"Paris"}'}
    call = {"id": "call_1", "type": "function", "function": function}
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
    ]
    answer = await post(async_client, {**ASK, "messages": messages}, auth)
    assert answer.status_code == 200, answer.content
    sent = engine(fake_pool).calls[-1]["messages"]
    assert [m.role for m in sent] == ["system", "user", "assistant", "user"]
    assert '"location": "Paris"' in sent[2].content and "18 C, sunny" in sent[3].content
    without_tools = await post(async_client, {"model": "fake-chat", "messages": messages}, auth)
    assert without_tools.status_code == 200 and engine(fake_pool).calls[-1]["messages"][-1].role == "user"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"tool_choice": "required", "tools": []}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "bogus"}}}]}, "tools"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ],
)
async def test_bad_tool_requests_are_400s_naming_the_field(async_client, auth, fake_pool, change, param):
    answer = await post(async_client, {**ASK, **change}, auth)
    assert answer.status_code == 400, answer.content
    assert answer.json()["error"]["param"].startswith(param), answer.json()


async def test_completions_refuse_tools(async_client, auth, fake_pool):
    body = {"model": "fake-completion", "prompt": "hi", "tools": [WEATHER]}
    answer = await async_client.post("/v1/completions", json.dumps(body), content_type="application/json", **auth)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "tools"


async def test_a_tool_aware_template_gets_the_tools_and_the_turns_as_they_are(async_client, auth, fake_pool):
    spec = fake_pool.specs["fake-chat"]
    fake_pool.specs["fake-chat"] = dataclasses.replace(spec, tool_format=ToolFormat(template="model"))
    function = {"name": "get_weather", "arguments": '{"location":"Paris"}'}
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": function}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
    ]
    answer = await post(async_client, {**ASK, "messages": messages}, auth)
    assert answer.status_code == 200, answer.content
    seen = engine(fake_pool).calls[-1]
    assert [t.name for t in seen["tools"]] == ["get_weather"]
    assert [m.role for m in seen["messages"]] == ["user", "assistant", "tool"]
    assert seen["messages"][1].tool_calls[0].id == "call_1" and seen["messages"][2].tool_call_id == "call_1"
