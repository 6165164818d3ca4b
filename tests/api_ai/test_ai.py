"""The unified-inference dialect (/ai/) with fake engines in this process: every answer's shape, streaming, tool
calls (whole and streamed), what reaches the engine, and every refusal in the dialect's error shape with the same
code, param and message as /v1. Over real HTTP: test_live.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async

from inference import EnginePool
from inference.device import DeviceDecision
from playground import engines
from playground.api import ai
from playground.tokens.models import ApiToken
from tests.conftest import FAKE_SPECS

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4}
GENERATE = {"model": "fake-completion", "prompt": "Once upon a time", "max_tokens": 3}
EMBED = {"model": "fake-embed", "input": "a text"}
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


async def post(client, path: str, body: Any, auth: dict[str, Any]):  # noqa: ANN001, ANN201
    data = body if isinstance(body, bytes) else json.dumps(body)
    return await client.post(path, data, content_type="application/json", **auth)


async def sse_events(response) -> list[Any]:  # noqa: ANN001
    """The decoded `data:` payloads of a streamed answer ("[DONE]" kept as a string)."""
    raw = b"".join([part async for part in response.streaming_content]).decode()
    blocks = [b for b in raw.split("\n\n") if b.strip()]
    assert all(b.startswith("data: ") for b in blocks), raw
    return [b[6:] if b[6:] == "[DONE]" else json.loads(b[6:]) for b in blocks]


def engine(pool: EnginePool, model_id: str = "fake-chat"):  # noqa: ANN201
    """A fake engine, loaded (so a test can set its reply and read what it was asked)."""
    pool.call(model_id, lambda loaded: None)
    return pool.workers[model_id].engine


def check_error(response, status: int, code: str, param: str | None = None) -> dict[str, Any]:  # noqa: ANN001
    """The /ai/ error shape: {"error": {code, message, param?, retry_after?, status}}."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) <= {"code", "message", "param", "retry_after", "status"}, error
    assert error["code"] == code and error["status"] == status and error["message"], error
    assert error.get("param") == param, error
    return error


# --- models --------------------------------------------------------------------------------------------------------


async def test_models_lists_the_text_and_embedding_models_with_their_capabilities(async_client, auth, fake_pool):
    response = await async_client.get("/ai/models", **auth)
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["models"]}
    assert set(models) == {"fake-chat", "fake-completion", "fake-embed"}  # audio models have no /ai/ route
    assert models["fake-chat"] == {
        "id": "fake-chat",
        "provider": "genai-playground",
        "capabilities": ["chat", "generate"],
        "context_length": 2048,
    }
    assert models["fake-completion"]["capabilities"] == ["generate"]
    assert models["fake-embed"]["capabilities"] == ["embeddings"] and models["fake-embed"]["context_length"] is None


def test_capabilities_use_the_dialects_words():
    spec = next(s for s in FAKE_SPECS if s.id == "fake-chat")
    spec = dataclasses.replace(spec, capabilities=("chat", "streaming", "tools", "json-mode", "system-prompt"))
    assert ai.capabilities(spec) == ["chat", "generate", "streaming", "function_calling", "json_mode", "system_prompt"]


# --- chat ----------------------------------------------------------------------------------------------------------


async def test_chat_answers_in_the_dialects_shape_with_exact_usage(async_client, auth, fake_pool):
    response = await post(async_client, "/ai/chat", {**CHAT, "temperature": 0.2, "top_p": 0.5}, auth)
    assert response.status_code == 200, response.content
    data = response.json()
    assert set(data) == {"id", "model", "message", "usage", "finish_reason"}
    assert data["id"].startswith("chat-") and data["model"] == "fake-chat"
    assert data["message"] == {"role": "assistant", "content": "You said: hello there"}  # one word per token
    assert data["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
    assert data["finish_reason"] == "length"
    params = engine(fake_pool).calls[-1]["params"]
    assert (params.temperature, params.top_p, params.max_tokens) == (0.2, 0.5, 4)


async def test_chat_leaves_out_what_the_caller_did_not_send_to_the_catalog_defaults(async_client, auth, fake_pool):
    body = {"model": "fake-chat", "messages": [{"role": "system", "content": "Be brief."}, CHAT["messages"][0]]}
    data = (await post(async_client, "/ai/chat", body, auth)).json()
    assert data["finish_reason"] == "stop"
    seen = engine(fake_pool).calls[-1]
    assert seen["params"].temperature == 0.5 and seen["params"].max_tokens == 64  # fake-chat's catalog defaults
    assert [m.role for m in seen["messages"]] == ["system", "user"]


async def test_a_streamed_chat_sends_deltas_then_the_finish_reason_and_done(async_client, auth, fake_pool):
    whole = (await post(async_client, "/ai/chat", CHAT, auth)).json()
    response = await post(async_client, "/ai/chat", {**CHAT, "stream": True}, auth)
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    events = await sse_events(response)
    assert events[-1] == "[DONE]"
    last = events[-2]
    assert last == {"delta": {}, "finish_reason": "length", "usage": whole["usage"]}
    deltas = events[:-2]
    assert deltas and all(set(e) == {"delta"} and set(e["delta"]) == {"content"} for e in deltas)
    assert "".join(e["delta"]["content"] for e in deltas) == whole["message"]["content"]


async def test_a_stream_that_fails_after_it_started_ends_with_an_error_event_then_done(
    async_client, auth, fake_pool, settings
):
    settings.PLAYGROUND_REQUEST_TIMEOUT = 1.0
    engine(fake_pool).delay = 0.2
    response = await post(async_client, "/ai/chat", {**CHAT, "max_tokens": 40, "stream": True}, auth)
    assert response.status_code == 200
    events = await sse_events(response)
    assert events[-1] == "[DONE]"
    error = events[-2]["error"]
    assert error["code"] == "timeout" and error["status"] == 504 and "1 seconds" in error["message"]
    assert "type" not in error and any("delta" in e for e in events[:-2])


# --- tools ---------------------------------------------------------------------------------------------------------


async def test_a_required_call_comes_back_as_tool_calls(async_client, auth, fake_pool):
    engine(fake_pool).grammar_reply = CALL
    response = await post(async_client, "/ai/chat", {**ASK, "tool_choice": "required"}, auth)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["finish_reason"] == "tool_calls"
    message = data["message"]
    assert message["role"] == "assistant" and message["content"] is None
    (call,) = message["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    seen = engine(fake_pool).calls[-1]
    assert "get_weather" in seen["grammar"] and seen["params"].grammar_trigger is None  # the whole reply
    assert "get_weather" in seen["messages"][0].content  # described in the system turn


async def test_auto_lets_the_model_write_text_before_a_call(async_client, auth, fake_pool):
    engine(fake_pool).grammar_reply = "Let me look. " + CALL
    message = (await post(async_client, "/ai/chat", ASK, auth)).json()["message"]
    assert message["content"] == "Let me look." and message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert engine(fake_pool).calls[-1]["params"].grammar_trigger == "<tool_call>"


async def test_streamed_calls_come_whole_as_tool_call_deltas(async_client, auth, fake_pool):
    berlin = CALL.replace("Paris", "Berlin")
    engine(fake_pool).grammar_reply = "Checking. " + CALL + "\n" + berlin
    events = await sse_events(await post(async_client, "/ai/chat", {**ASK, "stream": True}, auth))
    assert events[-1] == "[DONE]" and events[-2]["finish_reason"] == "tool_calls" and events[-2]["delta"] == {}
    deltas = [e["delta"] for e in events[:-2]]
    assert "".join(d.get("content", "") for d in deltas).strip() == "Checking."
    calls = [d["tool_calls"] for d in deltas if "tool_calls" in d]
    assert [len(c) for c in calls] == [1, 1]  # one delta per call, each whole
    first, second = calls[0][0], calls[1][0]
    assert first["index"] == 0 and second["index"] == 1 and first["id"] != second["id"]
    assert first["id"].startswith("call_") and first["type"] == "function"
    assert first["function"]["name"] == "get_weather"
    assert json.loads(first["function"]["arguments"]) == {"location": "Paris"}
    assert json.loads(second["function"]["arguments"]) == {"location": "Berlin"}


async def test_a_call_cut_short_says_length_and_is_given_as_far_as_it_got(async_client, auth, fake_pool):
    engine(fake_pool).grammar_reply = CALL
    body = {**ASK, "tool_choice": "required", "max_tokens": 5}
    data = (await post(async_client, "/ai/chat", body, auth)).json()
    assert data["finish_reason"] == "length" and data["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    events = await sse_events(await post(async_client, "/ai/chat", {**body, "stream": True}, auth))
    assert events[-2]["finish_reason"] == "length"
    assert [d["delta"]["tool_calls"][0]["function"]["name"] for d in events[:-2]] == ["get_weather"]


async def test_an_answer_with_calls_and_the_results_can_be_sent_back(async_client, auth, fake_pool):
    engine(fake_pool).grammar_reply = CALL
    answer = (await post(async_client, "/ai/chat", {**ASK, "tool_choice": "required"}, auth)).json()
    call_id = answer["message"]["tool_calls"][0]["id"]
    messages = [*ASK["messages"], answer["message"], {"role": "tool", "tool_call_id": call_id, "content": "18 C"}]
    response = await post(async_client, "/ai/chat", {**ASK, "messages": messages}, auth)
    assert response.status_code == 200, response.content
    sent = engine(fake_pool).calls[-1]["messages"]
    assert '"location": "Paris"' in sent[2].content and "18 C" in sent[3].content


async def test_tool_choice_none_describes_no_tools(async_client, auth, fake_pool):
    data = (await post(async_client, "/ai/chat", {**ASK, "tool_choice": "none"}, auth)).json()
    assert "tool_calls" not in data["message"] and data["message"]["content"].startswith("You said")
    assert engine(fake_pool).calls[-1]["grammar"] is None


# --- generate and embeddings ---------------------------------------------------------------------------------------


async def test_generate_continues_the_prompt_with_a_completion_model(async_client, auth, fake_pool):
    response = await post(async_client, "/ai/generate", {**GENERATE, "temperature": 0}, auth)
    assert response.status_code == 200, response.content
    data = response.json()
    assert set(data) == {"id", "model", "text", "finish_reason", "usage"}
    assert data["id"].startswith("gen-") and data["model"] == "fake-completion"
    assert data["text"] == "and then" + data["text"][len("and then") :] and data["finish_reason"] == "length"
    assert data["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    seen = engine(fake_pool, "fake-completion").calls[-1]
    assert seen["kind"] == "complete" and seen["prompt"] == "Once upon a time"
    assert seen["params"].temperature == 0 and seen["params"].max_tokens == 3


async def test_generate_gives_a_chat_model_the_prompt_as_one_user_message(async_client, auth, fake_pool):
    data = (await post(async_client, "/ai/generate", {**GENERATE, "model": "fake-chat", "max_tokens": 5}, auth)).json()
    assert data["text"] == "You said: Once upon a"
    seen = engine(fake_pool).calls[-1]
    assert seen["kind"] == "chat" and [(m.role, m.content) for m in seen["messages"]] == [("user", "Once upon a time")]


async def test_embeddings_of_one_text_and_of_a_list(async_client, auth, fake_pool):
    one = await post(async_client, "/ai/embeddings", EMBED, auth)
    assert one.status_code == 200, one.content
    data = one.json()
    assert set(data) == {"model", "embedding", "dimensions", "usage"}
    assert data["dimensions"] == 8 and len(data["embedding"]) == 8 and data["usage"] == {"total_tokens": 4}
    many = (await post(async_client, "/ai/embeddings", {**EMBED, "input": ["a text", "another one"]}, auth)).json()
    assert set(many) == {"model", "embeddings", "dimensions", "usage"}
    assert many["embeddings"][0] == data["embedding"] and len(many["embeddings"]) == 2
    assert many["dimensions"] == 8 and many["usage"] == {"total_tokens": 8}


# --- errors --------------------------------------------------------------------------------------------------------

# (path, body, status, code, param): each refusal, in the dialect's shape.
CASES: list[tuple[str, Any, int, str, str | None]] = [
    ("/ai/chat", b"{not json", 400, "invalid_json", None),
    ("/ai/chat", b"[1]", 400, "invalid_json", None),
    ("/ai/chat", {"messages": CHAT["messages"]}, 400, "missing_required_parameter", "model"),
    ("/ai/chat", {**CHAT, "model": "nope"}, 404, "model_not_found", "model"),
    ("/ai/chat", {**CHAT, "model": "fake-completion"}, 404, "model_not_found", "model"),
    ("/ai/chat", {**CHAT, "messages": []}, 400, "invalid_parameter", "messages"),
    ("/ai/chat", {**CHAT, "temperature": 3}, 400, "invalid_parameter", "temperature"),
    ("/ai/chat", {**CHAT, "temperature": "hot"}, 400, "invalid_type", "temperature"),
    ("/ai/chat", {**CHAT, "top_p": 1.5}, 400, "invalid_parameter", "top_p"),
    ("/ai/chat", {**CHAT, "max_tokens": 0}, 400, "invalid_parameter", "max_tokens"),
    ("/ai/chat", {**CHAT, "max_tokens": 5000}, 400, "invalid_parameter", "max_tokens"),
    ("/ai/chat", {**CHAT, "top_k": 5}, 400, "unknown_parameter", "top_k"),
    ("/ai/chat", {**CHAT, "stream": "yes"}, 400, "invalid_type", "stream"),
    ("/ai/chat", {**ASK, "tools": [WEATHER, WEATHER]}, 400, "invalid_parameter", "tools[1].function.name"),
    ("/ai/chat", {**ASK, "response_format": {"type": "json_object"}}, 400, "unsupported_parameter", "response_format"),
    ("/ai/generate", {"model": "fake-completion"}, 400, "missing_required_parameter", "prompt"),
    ("/ai/generate", {**GENERATE, "prompt": ""}, 400, "invalid_parameter", "prompt"),
    ("/ai/generate", {**GENERATE, "model": "fake-embed"}, 404, "model_not_found", "model"),
    ("/ai/generate", {**GENERATE, "stream": True}, 400, "unknown_parameter", "stream"),
    ("/ai/generate", {**GENERATE, "max_tokens": 2048}, 400, "context_length_exceeded", "prompt"),
    ("/ai/embeddings", {**EMBED, "input": []}, 400, "invalid_parameter", "input"),
    ("/ai/embeddings", {**EMBED, "input": ""}, 400, "invalid_parameter", "input"),
    ("/ai/embeddings", {**EMBED, "input": ["a", ""]}, 400, "invalid_parameter", "input[1]"),
    ("/ai/embeddings", {**EMBED, "input": 5}, 400, "invalid_type", "input"),
    ("/ai/embeddings", {**EMBED, "model": "fake-chat"}, 404, "model_not_found", "model"),
]


@pytest.mark.parametrize(("path", "body", "status", "code", "param"), CASES)
async def test_every_refusal_has_the_dialects_error_shape(
    async_client, auth, fake_pool, path, body, status, code, param
):
    check_error(await post(async_client, path, body, auth), status, code, param)


@pytest.mark.parametrize(
    ("ai_body", "v1_path", "v1_body"),
    [
        ({**CHAT, "temperature": 5}, "/v1/chat/completions", {**CHAT, "temperature": 5}),
        ({**CHAT, "model": "nope"}, "/v1/chat/completions", {**CHAT, "model": "nope"}),
        ({**CHAT, "messages": [{"role": "robot", "content": "x"}]}, "/v1/chat/completions", None),
        ({**ASK, "tool_choice": "required", "tools": []}, "/v1/chat/completions", None),
    ],
)
async def test_the_same_mistake_gets_the_same_code_param_and_message_as_v1(
    async_client, auth, fake_pool, ai_body, v1_path, v1_body
):
    ai_error = (await post(async_client, "/ai/chat", ai_body, auth)).json()["error"]
    v1 = await post(async_client, v1_path, v1_body or ai_body, auth)
    v1_error = v1.json()["error"]
    assert ai_error["status"] == v1.status_code
    assert (ai_error["code"], ai_error.get("param")) == (v1_error["code"], v1_error.get("param"))
    assert ai_error["message"].replace("/ai/chat", "") == v1_error["message"].replace("/v1/chat/completions", "")


async def test_no_token_is_a_401_in_the_dialects_shape(async_client, fake_pool):
    response = await async_client.get("/ai/models")
    error = check_error(response, 401, "invalid_api_key")
    assert response["WWW-Authenticate"] == "Bearer" and "missing API token" in error["message"]
    bad = await async_client.post(
        "/ai/chat", json.dumps(CHAT), content_type="application/json", headers={"Authorization": "Bearer gp_wrong"}
    )
    check_error(bad, 401, "invalid_api_key")


async def test_wrong_method_and_unknown_path(async_client, auth, fake_pool):
    response = await async_client.get("/ai/chat", **auth)
    check_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"
    check_error(await post(async_client, "/ai/models", {}, auth), 405, "method_not_allowed")
    missing = await async_client.get("/ai/nothing/here", **auth)
    assert "/ai/nothing/here" in check_error(missing, 404, "unknown_url")["message"]


async def test_a_tokens_rate_limit_is_a_429_with_retry_after(async_client, user, auth, fake_pool):
    await sync_to_async(ApiToken.objects.filter(user=user).update)(requests_per_minute=1)
    assert (await post(async_client, "/ai/chat", CHAT, auth)).status_code == 200
    response = await post(async_client, "/ai/chat", CHAT, auth)
    error = check_error(response, 429, "rate_limit_exceeded")
    assert 1 <= error["retry_after"] <= 60 and response["Retry-After"] == str(error["retry_after"])
    assert "1 request per minute" in error["message"]


async def test_a_full_queue_is_a_429_with_retry_after(async_client, auth):
    pool = EnginePool(FAKE_SPECS, device=DeviceDecision("cpu", "tests"), threads=1, max_queue=1)
    engines.set_pool(pool)

    async def send(body: dict[str, Any]):  # noqa: ANN202
        async with ThreadSensitiveContext():  # each request on its own thread, as Daphne runs them
            return await post(async_client, "/ai/chat", body, auth)

    async def until(condition) -> None:  # noqa: ANN001
        deadline = time.monotonic() + 30  # only ends a hung test
        while not condition():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)

    try:
        slow = engine(pool)
        slow.delay = 1.0  # holds the model far longer than the next requests take to arrive
        worker = pool.workers["fake-chat"]
        body = {**CHAT, "max_tokens": 40}
        running = asyncio.create_task(send(body))
        await until(lambda: worker.busy)
        waiting = asyncio.create_task(send(body))
        await until(lambda: worker.waiting == 1)
        response = await send(body)
        error = check_error(response, 429, "queue_full")
        assert error["retry_after"] == 2 and response["Retry-After"] == "2"
        slow.delay = 0
        assert (await running).status_code == 200 and (await waiting).status_code == 200
    finally:
        engines.set_pool(None)
