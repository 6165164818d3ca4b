"""The Compare socket (ws/compare/): panes streaming at once, their figures and cost, one pane's refusal, stop,
disconnect, and "use this one" (fake engines)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from playground.asgi import application
from playground.chat.models import Conversation
from playground.serving import sampling_params, text_generate
from playground.usage.models import PriceVersion, UsageRecord
from tests.contract.test_one_vocabulary import BAD

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5


def slow(pool: Any, model_id: str, delay: float = 0.05) -> Any:
    """Give a model's fake engine a per-token delay (loading it first, before any job runs)."""
    worker = pool.workers[model_id]
    worker.load()
    worker.engine.delay = delay
    return worker.engine


async def connect(cookie: bytes | None, path: str = "/ws/compare/") -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator


async def until_ended(communicator: WebsocketCommunicator, panes: int) -> list[dict[str, Any]]:
    """Every frame until each of `panes` panes has ended (with done or an error frame)."""
    frames, ended = [], set()
    while len(ended) < panes:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        frames.append(frame)
        if frame["type"] in ("done", "error"):
            assert "pane" in frame, frame
            ended.add(frame["pane"])
    return frames


async def frames_until(communicator: WebsocketCommunicator, kind: str) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        frames.append(frame)
        if frame["type"] == kind:
            return frames


def generate(*panes: dict[str, Any], content: str = "hello there", system: str = "") -> dict[str, Any]:
    return {"type": "generate", "system": system, "content": content, "panes": list(panes)}


def pane(model: str = "fake-chat", **params: Any) -> dict[str, Any]:
    return {"model": model, "params": params}


def of(frames: list[dict[str, Any]], index: int, kind: str | None = None) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("pane") == index and (kind is None or f["type"] == kind)]


def text_of(frames: list[dict[str, Any]], index: int) -> str:
    return "".join(f["text"] for f in of(frames, index, "token"))


@pytest.mark.metering  # the ledger prices each pane's reply
async def test_panes_stream_at_once_each_with_its_model_parameters_figures_and_cost(cookie, compare_pool, user):
    slow(compare_pool, "fake-chat")
    slow(compare_pool, "fake-chat-2")
    communicator = await connect(cookie)
    frame = generate(
        pane("fake-chat", temperature=0.3, seed=7),
        pane("fake-chat-2", max_tokens=""),  # blank: the model's default
        pane("fake-chat", temperature=1.2, max_tokens=4),
        content="compare this",
        system="Be brief.",
    )
    await communicator.send_json_to(frame)
    frames = await until_ended(communicator, 3)

    # Two models at once: tokens of the second model arrive before the first model's pane is done.
    first_done = frames.index(of(frames, 0, "done")[0])
    assert any(f["type"] == "token" and f["pane"] == 1 for f in frames[:first_done])
    # The third pane shares the first pane's model (one request at a time there): it waited in its line.
    assert of(frames, 2, "queued")[0]["position"] >= 1

    assert text_of(frames, 0).startswith("You said: compare this")
    assert text_of(frames, 1).startswith("You said: compare this")
    dones = {index: of(frames, index, "done")[0] for index in range(3)}
    assert [dones[i]["model"] for i in range(3)] == ["fake-chat", "fake-chat-2", "fake-chat"]
    assert dones[0]["finish_reason"] == "stop" and dones[2]["finish_reason"] == "length"
    assert dones[2]["usage"]["completion_tokens"] == 4
    for index, done in dones.items():
        assert done["usage"]["completion_tokens"] == len(of(frames, index, "token"))
        assert done["usage"]["prompt_tokens"] > 0
        assert done["ttft_ms"] is not None and done["tokens_per_second"] is not None

    # The cost is the ledger's price of those tokens (fake-chat-2: $2 and $4 per million; fake-chat: free).
    records = [r async for r in UsageRecord.objects.filter(endpoint="ws/compare").order_by("id")]
    assert len(records) == 3 and {r.user_id for r in records} == {user.pk}
    second = dones[1]["usage"]
    expected = (Decimal(second["prompt_tokens"]) * 2 + Decimal(second["completion_tokens"]) * 4) / 1_000_000
    assert Decimal(dones[1]["cost"]) == expected > 0
    assert (await UsageRecord.objects.aget(model_id="fake-chat-2")).cost == expected
    assert Decimal(dones[0]["cost"]) == 0

    # Each engine got the shared system prompt and message, with its pane's own values.
    calls = compare_pool.workers["fake-chat"].engine.calls
    assert [(m.role, m.content) for m in calls[0]["messages"]] == [("system", "Be brief."), ("user", "compare this")]
    assert (calls[0]["params"].temperature, calls[0]["params"].seed) == (0.3, 7)
    assert (calls[1]["params"].temperature, calls[1]["params"].max_tokens) == (1.2, 4)
    (call,) = compare_pool.workers["fake-chat-2"].engine.calls
    assert (call["params"].temperature, call["params"].max_tokens) == (0.9, 32)  # the catalog defaults
    assert await Conversation.objects.acount() == 0  # comparing saves no conversation
    await communicator.disconnect()


async def test_a_refusal_in_one_pane_does_not_stop_the_others(cookie, compare_pool):
    communicator = await connect(cookie)
    frame = generate(
        pane("fake-chat", temperature=5),  # out of range
        pane("fake-embed"),  # not a chat model
        pane("fake-chat-2"),
        pane("fake-chat", max_tokens=2048),  # the prompt does not fit beside it: the engine refuses
    )
    await communicator.send_json_to(frame)
    frames = await until_ended(communicator, 4)
    (refused,) = of(frames, 0, "error")
    assert (refused["code"], refused["param"]) == ("invalid_parameter", "temperature")
    (wrong_model,) = of(frames, 1, "error")
    assert (wrong_model["code"], wrong_model["param"]) == ("model_not_found", "model")
    assert "serves embeddings" in wrong_model["message"]
    (too_long,) = of(frames, 3, "error")
    assert too_long["code"] == "context_length_exceeded"
    (done,) = of(frames, 2, "done")
    assert done["finish_reason"] == "stop" and text_of(frames, 2).startswith("You said: hello there")
    assert not of(frames, 0, "done") and not of(frames, 1, "done") and not of(frames, 3, "done")

    # The same bad value gets the same code, param and message as the chat socket gives.
    chat = await connect(cookie, "/ws/chat/")
    await chat.send_json_to(
        {"type": "generate", "model": "fake-chat", "content": "hi", "system": "", "params": {"temperature": 5}}
    )
    chat_error = await chat.receive_json_from(timeout=TIMEOUT)
    assert {k: chat_error[k] for k in ("code", "param", "message")} == {
        k: refused[k] for k in ("code", "param", "message")
    }
    await chat.disconnect()
    await communicator.disconnect()


async def test_stop_stops_every_pane_inside_its_engine(cookie, compare_pool):
    first = slow(compare_pool, "fake-chat", delay=0.1)  # a whole reply takes 1.5 s
    second = slow(compare_pool, "fake-chat-2", delay=0.1)
    communicator = await connect(cookie)
    await communicator.send_json_to(generate(pane("fake-chat"), pane("fake-chat-2")))
    seen: set[int] = set()
    while seen != {0, 1}:  # both panes are generating
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        if frame["type"] == "token":
            seen.add(frame["pane"])
    await communicator.send_json_to({"type": "stop"})
    frames = await until_ended(communicator, 2)
    for index in (0, 1):
        (done,) = of(frames, index, "done")
        assert done["finish_reason"] == "cancelled"
        assert done["usage"]["completion_tokens"] < 10  # a full reply is 15 words
    assert first.generated[-1] < 10 and second.generated[-1] < 10  # the engines stopped
    # Both engines are free: a new request on each runs at once.
    params = await sync_to_async(sampling_params)(model_id="fake-chat", overrides={"max_tokens": 1})
    started = time.monotonic()
    for model_id in ("fake-chat", "fake-chat-2"):
        await asyncio.wait_for(sync_to_async(text_generate)(model_id=model_id, params=params, prompt="x"), TIMEOUT)
    assert time.monotonic() - started < 1.0
    await communicator.disconnect()


async def test_closing_the_socket_cancels_every_pane(cookie, compare_pool):
    first = slow(compare_pool, "fake-chat", delay=0.2)  # a whole reply would take 3 s
    second = slow(compare_pool, "fake-chat-2", delay=0.2)
    communicator = await connect(cookie)
    await communicator.send_json_to(generate(pane("fake-chat"), pane("fake-chat-2")))
    await frames_until(communicator, "token")
    await communicator.disconnect(timeout=TIMEOUT)

    started = time.monotonic()
    params = await sync_to_async(sampling_params)(model_id="fake-chat", overrides={"max_tokens": 1})
    for model_id in ("fake-chat", "fake-chat-2"):
        result = await asyncio.wait_for(
            sync_to_async(text_generate)(model_id=model_id, params=params, prompt="next"), TIMEOUT
        )
        assert result.finish_reason == "length"
    assert time.monotonic() - started < 1.5  # neither waited for the abandoned replies
    assert first.generated[0] < 15 and second.generated[0] < 15


async def test_a_new_compare_cancels_the_running_one(cookie, compare_pool):
    slow(compare_pool, "fake-chat", delay=0.05)
    slow(compare_pool, "fake-chat-2", delay=0.05)
    communicator = await connect(cookie)
    await communicator.send_json_to(generate(pane("fake-chat"), pane("fake-chat-2"), content="first"))
    await frames_until(communicator, "token")
    await communicator.send_json_to(generate(pane("fake-chat"), pane("fake-chat-2"), content="second"))
    old = await until_ended(communicator, 2)
    assert {f["finish_reason"] for f in old if f["type"] == "done"} == {"cancelled"}
    new = await until_ended(communicator, 2)
    assert {f["finish_reason"] for f in new if f["type"] == "done"} == {"stop"}
    assert text_of(new, 0).startswith("You said: second")
    await communicator.disconnect()


async def test_use_this_one_saves_the_pane_as_a_conversation_of_the_user(
    cookie, other_cookie, compare_pool, user, other_user
):
    communicator = await connect(cookie)
    frame = generate(
        pane("fake-chat", temperature=0.2), pane("fake-chat-2", temperature=1.1, seed=3), content="pick me"
    )
    await communicator.send_json_to({**frame, "system": "You are terse."})
    frames = await until_ended(communicator, 2)
    reply_text = text_of(frames, 1)
    done = of(frames, 1, "done")[0]

    await communicator.send_json_to({"type": "use", "pane": 1})
    saved = await communicator.receive_json_from(timeout=TIMEOUT)
    assert saved["type"] == "conversation" and saved["pane"] == 1
    assert saved["url"] == f"/chat/{saved['id']}/"

    conversation = await Conversation.objects.aget(pk=saved["id"])
    assert conversation.user_id == user.pk
    assert (conversation.model_id, conversation.system_prompt, conversation.title) == (
        "fake-chat-2",
        "You are terse.",
        "pick me",
    )
    messages = [m async for m in conversation.messages.all()]
    assert [(m.role, m.content) for m in messages] == [("user", "pick me"), ("assistant", reply_text)]
    reply = messages[1]
    assert reply.model_id == "fake-chat-2" and reply.finish_reason == "stop"
    assert reply.params["temperature"] == 1.1 and reply.params["seed"] == 3 and reply.params["max_tokens"] == 32
    assert (reply.prompt_tokens, reply.completion_tokens) == (
        done["usage"]["prompt_tokens"],
        done["usage"]["completion_tokens"],
    )
    assert reply.ttft_ms == done["ttft_ms"]

    # A second click opens the same conversation instead of saving another.
    await communicator.send_json_to({"type": "use", "pane": 1})
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["id"] == saved["id"]
    assert await Conversation.objects.acount() == 1

    # It opens in the owner's chat Playground; another user gets a 404.
    owner = Client()
    await sync_to_async(owner.force_login)(user)
    response = await sync_to_async(owner.get)(saved["url"])
    assert response.status_code == 302 and f"conversation={saved['id']}" in response["Location"]
    outsider = Client()
    await sync_to_async(outsider.force_login)(other_user)
    assert (await sync_to_async(outsider.get)(saved["url"])).status_code == 404
    # ... and another user's socket cannot continue this user's panes.
    theirs = await connect(other_cookie)
    await theirs.send_json_to({"type": "use", "pane": 1})
    refused = await theirs.receive_json_from(timeout=TIMEOUT)
    assert refused["type"] == "error" and refused["pane"] == 1 and refused["code"] == "invalid_request"
    assert await Conversation.objects.acount() == 1
    await theirs.disconnect()
    await communicator.disconnect()


async def test_use_this_one_needs_a_finished_reply(cookie, compare_pool):
    communicator = await connect(cookie)
    await communicator.send_json_to({"type": "use", "pane": 0})
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (frame["type"], frame["code"], frame["pane"]) == ("error", "invalid_request", 0)
    await communicator.send_json_to({"type": "use", "pane": "first"})
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (frame["code"], frame["param"]) == ("invalid_type", "pane") and "pane" not in frame
    # A refused pane has nothing to continue.
    await communicator.send_json_to(generate(pane("fake-chat", top_p=7), pane("fake-chat-2")))
    await until_ended(communicator, 2)
    await communicator.send_json_to({"type": "use", "pane": 0})
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (frame["type"], frame["pane"]) == ("error", 0)
    assert await Conversation.objects.acount() == 0
    await communicator.disconnect()


async def test_bad_frames_get_an_error_frame_and_nothing_starts(cookie, compare_pool):
    communicator = await connect(cookie)
    await communicator.send_to(text_data="not json")
    assert (await communicator.receive_json_from())["code"] == "invalid_json"
    await communicator.send_json_to({"type": "dance"})
    frame = await communicator.receive_json_from()
    assert (frame["code"], frame["param"]) == ("invalid_parameter", "type")
    bad = [
        ({**generate(pane(), pane()), "content": ""}, "content"),
        ({**generate(pane(), pane()), "content": "   "}, "content"),
        ({**generate(pane(), pane()), "system": "x" * 20_001}, "system"),
        (generate(pane()), "panes"),  # one pane: nothing to compare
        (generate(*[pane()] * 5), "panes"),
        ({**generate(), "panes": "fake-chat"}, "panes"),
        ({"type": "generate", "content": "hi"}, "panes"),
    ]
    for frame, param in bad:
        await communicator.send_json_to(frame)
        error = await communicator.receive_json_from()
        assert error["type"] == "error" and error["param"] == param and "pane" not in error, error
    await communicator.send_json_to({"type": "stop"})  # nothing running: ignored
    assert await communicator.receive_nothing(timeout=0.2)
    assert compare_pool.workers["fake-chat"].engine is None  # nothing reached a model
    # Still open and working.
    await communicator.send_json_to(generate(pane(), pane("fake-chat-2")))
    frames = await until_ended(communicator, 2)
    assert [f["finish_reason"] for f in frames if f["type"] == "done"] == ["stop", "stop"]
    await communicator.disconnect()


async def test_anonymous_sockets_are_refused(compare_pool):
    communicator = WebsocketCommunicator(application, "/ws/compare/", headers=[(b"origin", b"http://localhost")])
    connected, code = await communicator.connect(timeout=TIMEOUT)
    assert not connected and code == 4401


async def test_the_price_version_in_force_prices_the_reply(cookie, compare_pool):
    """With metering off nothing is written, and the reply is priced as the ledger would price it."""
    await PriceVersion.objects.acreate(
        model_id="fake-chat-2",
        effective_from=timezone.now() - timedelta(days=1),
        input_per_million_tokens=Decimal("10"),
        output_per_million_tokens=Decimal("20"),
        per_request=Decimal("0.001"),
    )
    communicator = await connect(cookie)
    await communicator.send_json_to(generate(pane(), pane("fake-chat-2")))
    frames = await until_ended(communicator, 2)
    usage = of(frames, 1, "done")[0]["usage"]
    expected = Decimal("0.001") + (Decimal(usage["prompt_tokens"]) * 10 + Decimal(usage["completion_tokens"]) * 20) / (
        1_000_000
    )
    assert Decimal(of(frames, 1, "done")[0]["cost"]) == expected
    assert await UsageRecord.objects.acount() == 0
    await communicator.disconnect()


@pytest.mark.parametrize(("name", "value"), BAD)
async def test_a_bad_value_gets_the_code_param_and_message_the_chat_socket_gives(cookie, compare_pool, name, value):
    chat = await connect(cookie, "/ws/chat/")
    frame = {"type": "generate", "model": "fake-chat", "conversation": None, "system": "", "content": "hi"}
    await chat.send_json_to({**frame, "params": {name: value}})
    expected = await chat.receive_json_from(timeout=TIMEOUT)
    await chat.disconnect()

    communicator = await connect(cookie)
    await communicator.send_json_to(generate(pane("fake-chat-2"), pane("fake-chat", **{name: value}), content="hi"))
    frames = await until_ended(communicator, 2)
    (error,) = of(frames, 1, "error")
    assert error == {**expected, "pane": 1}
    assert of(frames, 0, "done")[0]["finish_reason"] == "stop"
    await communicator.disconnect()


async def test_a_hostile_frame_is_refused_and_the_socket_stays_open(cookie, compare_pool):
    communicator = await connect(cookie)
    await communicator.send_to(text_data="[" * 100_000)
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["code"] == "invalid_json"
    await communicator.send_json_to(generate(*[pane()] * 3, content="x" * 100_001))
    error = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (error["code"], error["param"]) == ("invalid_parameter", "content")
    await communicator.send_json_to(generate(pane(), {"model": ["fake-chat"]}, "fake-chat"))
    frames = await until_ended(communicator, 3)
    assert of(frames, 1, "error")[0]["code"] == "invalid_type"
    assert of(frames, 2, "error")[0]["code"] == "invalid_type"
    assert of(frames, 0, "done")[0]["finish_reason"] == "stop"
    await communicator.disconnect()
