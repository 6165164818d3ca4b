"""Function calling and JSON mode in the Playground (ws/chat/): tool-call frames, tool results, the saved
conversation and its exact history, refusals (fake engines: a request with a grammar gets `grammar_reply`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from inference import SamplingParams, Usage
from inference.types import ToolCall
from playground.chat import services
from playground.chat.models import Conversation, Message
from playground.chat.selectors import conversation_history
from playground.tokens.services import token_create
from tests.chat.test_consumers import connect, frames_until

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>'
TWO_CALLS = CALL + '\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'


@pytest.fixture
def cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def replying(pool: Any, text: str) -> Any:
    """Make the fake chat engine answer `text` whenever the request carries a grammar."""
    worker = pool.workers["fake-chat"]
    worker.load()
    worker.engine.grammar_reply = text
    return worker.engine


def generate(content: str = "Weather in Paris?", **extra: Any) -> dict[str, Any]:
    frame = {"type": "generate", "model": "fake-chat", "conversation": None, "system": "", "content": content}
    return {**frame, **extra}


async def tool_turn(communicator: WebsocketCommunicator, **extra: Any) -> list[dict[str, Any]]:
    await communicator.send_json_to(generate(tools=[WEATHER], tool_choice="auto", **extra))
    return await frames_until(communicator, "done")


async def test_a_tool_call_is_sent_as_its_own_frame_and_saved_with_the_conversations_tools(cookie, fake_pool):
    engine = replying(fake_pool, "Let me check. " + CALL)
    communicator = await connect(cookie)
    frames = await tool_turn(communicator, parallel_tool_calls=False)
    tokens = "".join(f["text"] for f in frames if f["type"] == "token")
    assert tokens.strip() == "Let me check."  # the text before the call streams; the call does not
    (call,) = [f for f in frames if f["type"] == "tool_call"]
    assert call["index"] == 0 and call["name"] == "get_weather" and call["id"].startswith("call_")
    assert json.loads(call["arguments"]) == {"location": "Paris"}
    done = frames[-1]
    assert done["finish_reason"] == "tool_calls"
    assert done["tool_calls"] == [{"id": call["id"], "name": "get_weather", "arguments": call["arguments"]}]

    reply = await Message.objects.aget(pk=done["message_id"])
    assert reply.content == "Let me check." and reply.finish_reason == "tool_calls"
    assert reply.tool_calls == done["tool_calls"]
    assert "grammar" not in reply.params  # the grammar is rebuilt from the conversation's tools, not stored
    conversation = await Conversation.objects.aget(pk=frames[0]["id"])
    assert conversation.tools == [WEATHER] and conversation.tool_choice == "auto"
    assert conversation.parallel_tool_calls is False and conversation.response_format is None

    # The model was told about the tool and held to valid calls from the opening tag on.
    request = engine.calls[-1]
    assert request["params"].grammar and request["params"].grammar_trigger == "<tool_call>"
    assert request["messages"][0].role == "system" and '"name": "get_weather"' in request["messages"][0].content
    await communicator.disconnect()


async def test_a_tool_result_is_saved_and_the_model_answers_from_the_exact_history(cookie, fake_pool):
    engine = replying(fake_pool, CALL)
    communicator = await connect(cookie)
    frames = await tool_turn(communicator, system="Be brief.")
    conversation_id, call = frames[0]["id"], frames[-1]["tool_calls"][0]
    await communicator.send_json_to(
        {
            "type": "tool_result",
            "conversation": conversation_id,
            "results": [{"tool_call_id": call["id"], "content": '{"temperature": 18}'}],
            "tools": [WEATHER],
            "tool_choice": "none",  # answer in text now
        }
    )
    frames = await frames_until(communicator, "done")
    saved = frames[0].pop("saved")
    assert frames[0] == {"type": "conversation", "id": conversation_id, "title": "Weather in Paris?"}
    assert [s["role"] for s in saved] == ["tool"]
    text = "".join(f["text"] for f in frames if f["type"] == "token")
    assert '{"temperature": 18}' in text  # the fake echoes the last turn: the result reached the model
    assert frames[-1]["finish_reason"] == "stop" and frames[-1]["tool_calls"] == []

    rows = [m async for m in Message.objects.filter(conversation_id=conversation_id)]
    assert [m.role for m in rows] == ["user", "assistant", "tool", "assistant"]
    assert rows[2].tool_call_id == call["id"] and rows[2].content == '{"temperature": 18}'
    assert rows[3].content == text and rows[3].tool_calls is None

    # The history is exact: the call in the assistant turn, the result as a tool turn with the call's id.
    conversation = await Conversation.objects.aget(pk=conversation_id)
    history = await sync_to_async(conversation_history)(conversation=conversation)
    assert [(m.role, m.content) for m in history[:2]] == [("system", "Be brief."), ("user", "Weather in Paris?")]
    assert history[2].role == "assistant" and history[2].content == ""  # kept: it only called a tool
    assert history[2].tool_calls == (ToolCall(call["id"], "get_weather", call["arguments"]),)
    assert (history[3].role, history[3].content, history[3].tool_call_id) == ("tool", '{"temperature": 18}', call["id"])
    # The model (its template has no tool section) got the call written out and the result as a turn.
    sent = engine.calls[-1]["messages"]
    assert sent[-2].role == "assistant" and '"name": "get_weather"' in sent[-2].content
    assert sent[-1].content == '<tool_response>\n{"temperature": 18}\n</tool_response>'
    assert engine.calls[-1]["params"].grammar is None  # tool_choice none: free text
    assert conversation.tool_choice == "none"
    await communicator.disconnect()


async def test_tool_results_must_answer_the_last_replys_calls(cookie, fake_pool, other_user):
    replying(fake_pool, TWO_CALLS)
    communicator = await connect(cookie)
    await communicator.send_json_to(generate(tools=[WEATHER, TIME]))
    frames = await frames_until(communicator, "done")
    calls = [f for f in frames if f["type"] == "tool_call"]
    assert [(c["index"], c["name"]) for c in calls] == [(0, "get_weather"), (1, "get_time")]
    conversation_id = frames[0]["id"]

    def results(*pairs: tuple[str, str]) -> dict[str, Any]:
        items = [{"tool_call_id": i, "content": c} for i, c in pairs]
        return {"type": "tool_result", "conversation": conversation_id, "results": items}

    await communicator.send_json_to(results(("call_nope", "x")))
    frame = await communicator.receive_json_from()
    assert frame["code"] == "invalid_parameter" and frame["param"] == "results[0].tool_call_id"
    assert "'call_nope' is not a call of the conversation's last reply" in frame["message"]
    await communicator.send_json_to(results((calls[0]["id"], "18 C")))
    frame = await communicator.receive_json_from()
    assert frame["code"] == "missing_required_parameter" and frame["param"] == "results"
    assert calls[1]["id"] in frame["message"] and "get_time" in frame["message"]
    await communicator.send_json_to(results((calls[0]["id"], "a"), (calls[0]["id"], "b")))
    assert "already has a result" in (await communicator.receive_json_from())["message"]
    for bad in ({"results": []}, {"results": [{"tool_call_id": calls[0]["id"]}]}, {"results": "x"}):
        await communicator.send_json_to({**results(), **bad})
        assert (await communicator.receive_json_from())["param"].startswith("results")
    await communicator.send_json_to({**results((calls[0]["id"], "x")), "conversation": None})
    assert (await communicator.receive_json_from())["param"] == "conversation"
    assert await Message.objects.filter(conversation_id=conversation_id).acount() == 2  # nothing was saved

    theirs = await Conversation.objects.acreate(user=other_user, model_id="fake-chat")
    await communicator.send_json_to({**results((calls[0]["id"], "x")), "conversation": theirs.pk})
    assert (await communicator.receive_json_from())["code"] == "not_found"

    await communicator.send_json_to(results((calls[1]["id"], "noon"), (calls[0]["id"], "18 C")))
    frames = await frames_until(communicator, "done")
    assert frames[-1]["finish_reason"] == "tool_calls"  # the saved tools still apply: the fake calls again
    roles = [m.role async for m in Message.objects.filter(conversation_id=conversation_id)]
    assert roles == ["user", "assistant", "tool", "tool", "assistant"]
    # The earlier calls are answered; a new user message leaves nothing waiting for results.
    await communicator.send_json_to(results((calls[0]["id"], "again")))
    assert (await communicator.receive_json_from())["param"] == "results[0].tool_call_id"
    await communicator.disconnect()


async def test_bad_tools_are_refused_as_the_api_refuses_them_and_nothing_stored_changes(cookie, fake_pool):
    replying(fake_pool, CALL)
    communicator = await connect(cookie)
    frames = await tool_turn(communicator)
    conversation_id = frames[0]["id"]
    cases = [
        ({"tools": [{"name": "get_weather"}]}, "missing_required_parameter", "tools[0].type"),
        (
            {"tools": [{"type": "function", "function": {"name": "bad name"}}]},
            "invalid_parameter",
            "tools[0].function.name",
        ),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "invalid_parameter", "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "invalid_parameter",
            "tool_choice",
        ),
        ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "unsupported_parameter", "response_format"),
        ({"response_format": {"type": "json_schema"}}, "missing_required_parameter", "response_format.json_schema"),
        ({"tools": [WEATHER, WEATHER]}, "invalid_parameter", "tools[1].function.name"),
    ]
    for fields, code, param in cases:
        await communicator.send_json_to(generate("more", conversation=conversation_id, **fields))
        frame = await communicator.receive_json_from()
        assert (frame["type"], frame["code"], frame["param"]) == ("error", code, param), fields
        await communicator.send_json_to({"type": "regenerate", "conversation": conversation_id, **fields})
        assert (await communicator.receive_json_from())["param"] == param, fields
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.tools == [WEATHER] and conversation.tool_choice == "auto"
    assert await Message.objects.filter(conversation_id=conversation_id).acount() == 2
    await communicator.disconnect()


BAD_TOOL_FIELDS = [
    {"tools": [{"name": "get_weather"}]},
    {"tools": [{"type": "function", "function": {"name": "bad name"}}]},
    {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
    {"tools": [WEATHER], "response_format": {"type": "json_object"}},
    {"tool_choice": "required"},
    {"tools": [WEATHER], "parallel_tool_calls": "yes"},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"uniqueItems": True}}}},
]


@pytest.mark.parametrize("fields", BAD_TOOL_FIELDS)
async def test_a_bad_tool_field_gets_the_same_code_param_and_message_as_the_api(
    async_client, cookie, fake_pool, user, fields
):
    _, raw = await sync_to_async(token_create)(user=user, label="same errors")
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], **fields}
    v1 = await async_client.post(
        "/v1/chat/completions", body, content_type="application/json", headers={"Authorization": f"Bearer {raw}"}
    )
    assert v1.status_code == 400
    error = v1.json()["error"]
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("hi", **fields))
    frame = await communicator.receive_json_from()
    assert frame == {"type": "error", "code": error["code"], "param": error["param"], "message": error["message"]}
    await communicator.disconnect()


async def test_json_mode_holds_the_reply_to_a_grammar_and_is_remembered(cookie, fake_pool):
    engine = replying(fake_pool, '{"answer": "fake"}')
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("Answer in JSON", response_format={"type": "json_object"}))
    frames = await frames_until(communicator, "done")
    text = "".join(f["text"] for f in frames if f["type"] == "token")
    assert json.loads(text) == {"answer": "fake"} and frames[-1]["finish_reason"] == "stop"
    assert engine.calls[-1]["params"].grammar and engine.calls[-1]["params"].grammar_trigger is None
    conversation = await Conversation.objects.aget(pk=frames[0]["id"])
    assert conversation.response_format == {"type": "json_object"} and conversation.tools == []

    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    response_format = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    await communicator.send_json_to(generate("again", conversation=conversation.pk, response_format=response_format))
    frames = await frames_until(communicator, "done")
    assert json.loads("".join(f["text"] for f in frames if f["type"] == "token")) == {"answer": "fake"}
    grammar = engine.calls[-1]["params"].grammar
    assert grammar and "answer" in grammar
    await conversation.arefresh_from_db()
    assert conversation.response_format == response_format

    # A frame without the tool fields (an older client) keeps the saved reply format.
    await communicator.send_json_to({"type": "regenerate", "conversation": conversation.pk})
    await frames_until(communicator, "done")
    assert engine.calls[-1]["params"].grammar == grammar
    # Text again: null.
    await communicator.send_json_to(generate("plain", conversation=conversation.pk, response_format=None))
    frames = await frames_until(communicator, "done")
    assert engine.calls[-1]["params"].grammar is None
    await conversation.arefresh_from_db()
    assert conversation.response_format is None
    await communicator.disconnect()


async def test_regenerate_after_tool_results_answers_them_again(cookie, fake_pool):
    engine = replying(fake_pool, CALL)
    communicator = await connect(cookie)
    frames = await tool_turn(communicator)
    conversation_id, call = frames[0]["id"], frames[-1]["tool_calls"][0]
    result = {"tool_call_id": call["id"], "content": "18 C"}
    await communicator.send_json_to(
        {"type": "tool_result", "conversation": conversation_id, "results": [result], "tool_choice": "none"}
    )
    first = (await frames_until(communicator, "done"))[-1]["message_id"]
    await communicator.send_json_to({"type": "regenerate", "conversation": conversation_id, "params": {"seed": 3}})
    done = (await frames_until(communicator, "done"))[-1]
    assert done["message_id"] != first and done["message"]["versions"] == [first, done["message_id"]]
    roles = [m.role async for m in Message.objects.filter(conversation_id=conversation_id)]
    assert roles == ["user", "assistant", "tool", "assistant", "assistant"]  # the earlier version is kept
    assert engine.calls[-1]["messages"][-1].content == "<tool_response>\n18 C\n</tool_response>"
    await communicator.disconnect()


async def test_a_call_cut_short_is_sent_at_the_end_as_far_as_it_got(cookie, fake_pool):
    replying(fake_pool, '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Saint Pierre et Miquelon"}}')
    communicator = await connect(cookie)
    frames = await tool_turn(communicator, params={"max_tokens": 6})
    (call,) = [f for f in frames if f["type"] == "tool_call"]
    assert call["name"] == "get_weather" and call["arguments"].startswith('{"location": "Saint')
    done = frames[-1]
    assert done["finish_reason"] == "length" and done["tool_calls"][0]["arguments"] == call["arguments"]
    reply = await Message.objects.aget(pk=done["message_id"])
    assert reply.tool_calls == done["tool_calls"]
    await communicator.disconnect()


async def test_completion_models_take_a_reply_format_but_no_tools(cookie, fake_pool):
    communicator = await connect(cookie)
    frame = {"type": "generate", "mode": "completion", "model": "fake-completion", "content": "Once"}
    await communicator.send_json_to({**frame, "tools": [WEATHER]})
    refused = await communicator.receive_json_from()
    assert (refused["code"], refused["param"]) == ("unsupported_parameter", "tools")
    await communicator.send_json_to({**frame, "response_format": {"type": "json_object"}})
    await frames_until(communicator, "done")
    assert fake_pool.workers["fake-completion"].engine.calls[-1]["grammar"]
    await communicator.disconnect()


def test_history_keeps_a_reply_that_only_called_tools_and_regenerate_ends_at_the_results(user, fake_pool):
    turn = services.turn_start(user=user, model_id="fake-chat", conversation=None, system_prompt="", content="q")
    call = ToolCall("call_1", "get_weather", '{"location": "Oslo"}')
    record = {
        "model_id": "fake-chat",
        "params": SamplingParams(),
        "finish_reason": "tool_calls",
        "usage": Usage(prompt_tokens=3, completion_tokens=5),
        "ttft_seconds": None,
        "tokens_per_second": None,
    }
    services.reply_record(text="\n", turn=turn, tool_calls=[call], **record)
    results = [services.ToolResult(tool_call_id="call_1", content="-3 C")]
    after = services.turn_tool_results(conversation=turn.conversation, model_id="fake-chat", results=results)
    assert not Message.objects.filter(role="tool").exists()  # saved once the model takes the turn
    after = services.turn_accept(after)
    assert [(m.role, m.content, m.tool_calls, m.tool_call_id) for m in after.history] == [
        ("user", "q", (), ""),
        ("assistant", "", (call,), ""),
        ("tool", "-3 C", (), "call_1"),
    ]
    services.reply_record(text="It is cold.", turn=after, **{**record, "finish_reason": "stop"})
    again = services.turn_regenerate(conversation=turn.conversation, model_id="fake-chat")
    tool = Message.objects.get(role="tool")
    assert again.history == after.history and again.parent == tool.pk and again.replaces is None


def test_reopened_conversation_shows_its_tools_cards_and_results(client, user, other_user, fake_pool):
    schema = {"type": "object"}
    conversation = Conversation.objects.create(
        user=user,
        model_id="fake-chat",
        title="Weather",
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        response_format={"type": "json_schema", "json_schema": {"name": "out", "schema": schema}},
    )
    Message.objects.create(conversation=conversation, role="user", content="Weather?")
    arguments = '{"location": "<b>Paris</b>"}'
    calls = [{"id": "call_1", "name": "get_weather", "arguments": arguments}]
    Message.objects.create(conversation=conversation, role="assistant", content="", tool_calls=calls)
    Message.objects.create(conversation=conversation, role="tool", content="<i>18 C</i>", tool_call_id="call_1")
    client.force_login(user)
    url = reverse("card", args=["fake-chat"])
    body = client.get(url, {"tab": "playground", "conversation": conversation.pk}).content.decode()
    assert 'id="tools-panel" open' in body and 'data-initial="get_weather"' in body
    assert "&quot;name&quot;: &quot;get_weather&quot;" in body  # the editor holds the saved list, escaped
    assert 'id="parallel-tool-calls">' in body  # unchecked
    assert 'id="response-format" data-initial="json_schema"' in body and 'value="out"' in body
    assert 'data-tool-call-id="call_1" data-tool-name="get_weather"' in body
    assert "&quot;location&quot;: &quot;&lt;b&gt;Paris&lt;/b&gt;&quot;" in body  # pretty-printed, escaped
    assert '<article class="msg msg-tool" data-role="tool"' in body
    assert "Result of <code>get_weather</code>" in body and "&lt;i&gt;18 C&lt;/i&gt;" in body
    assert "<b>Paris" not in body and "<i>18" not in body
    client.force_login(other_user)
    assert client.get(url, {"tab": "playground", "conversation": conversation.pk}).status_code == 404


def test_a_new_chat_starts_with_no_tools_and_text_replies(client, user, fake_pool):
    client.force_login(user)
    body = client.get(reverse("card", args=["fake-chat"]), {"tab": "playground"}).content.decode()
    assert '<details class="params tools-panel" id="tools-panel">' in body
    assert 'id="tool-choice" data-initial="auto"' in body and 'data-initial="text"' in body
    assert 'id="parallel-tool-calls" checked' in body
