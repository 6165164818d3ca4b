"""The Playground socket (ws/chat/): streaming, stop, disconnect, queue position, refusals (fake engines)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from playground.asgi import application
from playground.catalog.models import ModelStats
from playground.chat.models import Conversation, Message
from playground.serving import sampling_params, text_generate, text_stream

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5


@pytest.fixture
def cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.fixture
def other_cookie(other_user) -> bytes:
    client = Client()
    client.force_login(other_user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def slow(pool: Any, model_id: str = "fake-chat", delay: float = 0.05) -> Any:
    """Give the model's fake engine a per-token delay (loading it first, before any job runs)."""
    worker = pool.workers[model_id]
    worker.load()
    worker.engine.delay = delay
    return worker.engine


async def connect(cookie: bytes | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator


async def frames_until(communicator: WebsocketCommunicator, *types: str) -> list[dict[str, Any]]:
    """Every frame up to and including the first one of one of `types`."""
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        frames.append(frame)
        if frame["type"] in types:
            return frames


def generate(content: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"type": "generate", "model": "fake-chat", "conversation": None, "system": "", "content": content, **extra}


@pytest.mark.metering  # the meter writes the card's speed
async def test_tokens_stream_as_generated_and_the_reply_is_saved_with_params_and_usage(cookie, fake_pool, user):
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("hello there", system="Be brief.", params={"temperature": 0.3, "seed": 7}))
    frames = await frames_until(communicator, "done")
    types = [f["type"] for f in frames if f["type"] != "queued"]
    assert types[0] == "conversation" and types[1] == "started" and types[-1] == "done"
    tokens = [f["text"] for f in frames if f["type"] == "token"]
    assert len(tokens) > 3  # one frame per token, not one blob
    text = "".join(tokens)
    assert text.startswith("You said: hello there")
    done = frames[-1]
    assert done["finish_reason"] == "stop"
    assert done["usage"]["completion_tokens"] == len(tokens)
    assert done["usage"]["prompt_tokens"] > 0
    assert done["ttft_ms"] is not None and done["tokens_per_second"] is not None

    conversation = await Conversation.objects.aget(pk=frames[0]["id"])
    assert conversation.user_id == user.pk and conversation.title == "hello there"
    assert conversation.system_prompt == "Be brief."
    messages = [m async for m in conversation.messages.all()]
    assert [m.role for m in messages] == ["user", "assistant"]
    reply = messages[1]
    assert reply.pk == done["message_id"]
    assert reply.content == text
    assert reply.params["temperature"] == 0.3 and reply.params["seed"] == 7
    assert reply.params["max_tokens"] == 64  # the catalog default for a blank field
    assert (reply.prompt_tokens, reply.completion_tokens) == (done["usage"]["prompt_tokens"], len(tokens))
    assert reply.finish_reason == "stop" and reply.model_id == "fake-chat" and reply.ttft_ms is not None
    stats = await ModelStats.objects.aget(model_id="fake-chat")
    assert stats.text_samples == 1  # recorded exactly once

    (call,) = fake_pool.workers["fake-chat"].engine.calls
    assert [(m.role, m.content) for m in call["messages"]] == [("system", "Be brief."), ("user", "hello there")]
    assert call["params"].temperature == 0.3
    await communicator.disconnect()


async def test_second_turn_sends_the_whole_conversation(cookie, fake_pool):
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("first", system="S"))
    frames = await frames_until(communicator, "done")
    conversation_id = frames[0]["id"]
    first_reply = "".join(f["text"] for f in frames if f["type"] == "token")
    await communicator.send_json_to(generate("second", conversation=conversation_id, system="S"))
    frames = await frames_until(communicator, "done")
    second = await Message.objects.aget(conversation_id=conversation_id, content="second")
    first = await Message.objects.aget(conversation_id=conversation_id, role="assistant", content=first_reply)
    assert second.parent_id == first.pk  # each message follows the one before it
    assert frames[0] == {
        "type": "conversation",
        "id": conversation_id,
        "title": "first",
        "saved": [{"id": second.pk, "role": "user", "versions": [second.pk]}],
    }
    call = fake_pool.workers["fake-chat"].engine.calls[-1]
    assert [(m.role, m.content) for m in call["messages"]] == [
        ("system", "S"),
        ("user", "first"),
        ("assistant", first_reply),
        ("user", "second"),
    ]
    assert await Message.objects.filter(conversation_id=conversation_id).acount() == 4
    await communicator.disconnect()


async def test_stop_ends_the_reply_as_cancelled_and_stops_the_engine(cookie, fake_pool):
    engine = slow(fake_pool, delay=0.05)
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("count for me"))
    await frames_until(communicator, "token")
    await communicator.send_json_to({"type": "stop"})
    frames = await frames_until(communicator, "done")
    done = frames[-1]
    assert done["finish_reason"] == "cancelled"
    assert done["usage"]["completion_tokens"] < 10  # a full reply is 15 words
    reply = await Message.objects.aget(pk=done["message_id"])
    assert reply.finish_reason == "cancelled" and reply.completion_tokens == done["usage"]["completion_tokens"]
    # The engine stopped: the next request runs at once instead of waiting for the rest of the reply.
    params = await sync_to_async(sampling_params)(model_id="fake-chat", overrides={"max_tokens": 1})
    started = time.monotonic()
    await asyncio.wait_for(sync_to_async(text_generate)(model_id="fake-chat", params=params, prompt="x"), TIMEOUT)
    assert time.monotonic() - started < 0.4
    assert len(engine.calls) == 2
    await communicator.disconnect()


async def test_closing_the_socket_cancels_the_job_and_frees_the_engine(cookie, fake_pool):
    slow(fake_pool, delay=0.2)  # a whole reply would take 3 s
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("long story"))
    await frames_until(communicator, "token")
    await communicator.disconnect(timeout=TIMEOUT)

    started = time.monotonic()
    params = await sync_to_async(sampling_params)(model_id="fake-chat", overrides={"max_tokens": 1})
    result = await asyncio.wait_for(
        sync_to_async(text_generate)(model_id="fake-chat", params=params, prompt="next"), TIMEOUT
    )
    assert result.finish_reason == "length"
    assert time.monotonic() - started < 1.5  # it did not wait for the abandoned reply to finish
    # The cut-short reply was still recorded, once.
    (reply,) = [m async for m in Message.objects.filter(role="assistant")]
    assert reply.finish_reason == "cancelled" and reply.completion_tokens is not None


async def test_bad_frames_get_an_error_frame_and_the_socket_stays_open(cookie, fake_pool):
    communicator = await connect(cookie)
    await communicator.send_to(text_data="not json")
    assert (await communicator.receive_json_from())["code"] == "invalid_json"
    await communicator.send_to(text_data="[1, 2]")
    assert (await communicator.receive_json_from())["code"] == "invalid_json"
    await communicator.send_json_to({"type": "dance"})
    frame = await communicator.receive_json_from()
    assert frame["type"] == "error" and frame["code"] == "invalid_parameter"
    await communicator.send_json_to({"type": "generate", "model": "fake-chat"})
    frame = await communicator.receive_json_from()
    assert frame["type"] == "error" and "content" in frame["message"]
    await communicator.send_json_to(generate("hi", model="fake-embed"))
    frame = await communicator.receive_json_from()
    assert (
        frame["type"] == "error" and "serves embeddings (/v1/embeddings), not the chat Playground" in frame["message"]
    )
    await communicator.send_json_to(generate("hi", model="no-such-model"))
    assert "does not exist" in (await communicator.receive_json_from())["message"]
    await communicator.send_json_to(generate("   "))
    frame = await communicator.receive_json_from()
    assert frame["type"] == "error" and frame["message"] == "the message is empty"
    await communicator.send_json_to({"type": "regenerate", "conversation": "x"})
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.send_json_to({"type": "stop"})  # nothing running: ignored
    assert await communicator.receive_nothing(timeout=0.2)
    # Still open and working.
    await communicator.send_json_to(generate("still here"))
    frames = await frames_until(communicator, "done")
    assert frames[-1]["finish_reason"] == "stop"
    assert await Conversation.objects.acount() == 1
    await communicator.disconnect()


async def test_anonymous_sockets_are_refused(fake_pool):
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", b"http://localhost")])
    connected, code = await communicator.connect(timeout=TIMEOUT)
    assert not connected and code == 4401


async def test_sockets_from_another_origin_are_refused(cookie, fake_pool):
    headers = [(b"origin", b"http://evil.example"), (b"cookie", cookie)]
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert not connected


async def test_another_users_conversation_is_refused(cookie, fake_pool, other_user):
    theirs = await Conversation.objects.acreate(user=other_user, model_id="fake-chat", title="private")
    await Message.objects.acreate(conversation=theirs, role="user", content="my secret")
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("let me in", conversation=theirs.pk))
    frame = await communicator.receive_json_from()
    assert frame == {"type": "error", "message": "conversation not found", "code": "not_found", "param": "conversation"}
    await communicator.send_json_to({"type": "regenerate", "conversation": theirs.pk})
    frame = await communicator.receive_json_from()
    assert frame["code"] == "not_found"
    assert await theirs.messages.acount() == 1
    assert fake_pool.workers["fake-chat"].engine is None  # nothing reached the model
    await communicator.disconnect()


async def test_out_of_range_params_are_refused_with_the_panels_message(cookie, fake_pool):
    """The frame names the first refused parameter with the code and message every API route gives for it."""
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("hi", params={"temperature": 3, "top_p": "0.5"}))
    assert await communicator.receive_json_from() == {
        "type": "error",
        "code": "invalid_parameter",
        "param": "temperature",
        "message": "temperature must be a number from 0 to 2 (got 3)",
    }
    await communicator.send_json_to(generate("hi", params={"max_tokens": 999999}))
    frame = await communicator.receive_json_from()
    assert frame["message"] == "max_tokens must be an integer from 1 to 2048 (got 999999)"
    await communicator.send_json_to(generate("hi", params={"seed": -1}))
    assert (await communicator.receive_json_from())["param"] == "seed"
    await communicator.send_json_to(generate("hi", params={"stop": ["a", "b", "c", "d", "e"]}))
    frame = await communicator.receive_json_from()
    assert frame["message"] == "stop may hold at most 4 sequences (got 5)" and frame["param"] == "stop"
    assert await Conversation.objects.acount() == 0  # nothing saved, nothing generated
    assert fake_pool.workers["fake-chat"].engine is None
    await communicator.disconnect()


async def test_stop_lines_from_the_panel_reach_the_engine(cookie, fake_pool):
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("alpha beta", params={"stop": "beta\n\n"}))
    frames = await frames_until(communicator, "done")
    assert "".join(f["text"] for f in frames if f["type"] == "token") == "You said: alpha "
    assert fake_pool.workers["fake-chat"].engine.calls[0]["params"].stop == ("beta",)
    await communicator.disconnect()


async def test_queue_position_is_shown_while_the_model_is_busy(cookie, fake_pool):
    slow(fake_pool, delay=0.05)
    params = await sync_to_async(sampling_params)(model_id="fake-chat", overrides={})
    blocker = text_stream(model_id="fake-chat", params=params, prompt="busy")
    while blocker.started_at is None:
        await asyncio.sleep(0.01)
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("me next"))
    frames = await frames_until(communicator, "queued")
    assert frames[-1] == {"type": "queued", "position": 1}
    assert await Conversation.objects.acount() == 0  # not saved while waiting: the model may still refuse it
    blocker.cancel()
    frames = await frames_until(communicator, "done")
    assert [f["type"] for f in frames][:2] == ["conversation", "started"]
    assert frames[-1]["finish_reason"] == "stop"
    await communicator.disconnect()


async def test_regenerate_keeps_the_earlier_versions(cookie, fake_pool):
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("tell me", params={"seed": 1}))
    frames = await frames_until(communicator, "done")
    conversation_id, first_id = frames[0]["id"], frames[-1]["message_id"]
    await communicator.send_json_to({"type": "regenerate", "conversation": conversation_id, "params": {"seed": 2}})
    frames = await frames_until(communicator, "done")
    done = frames[-1]
    assert done["finish_reason"] == "stop" and done["message_id"] != first_id
    assert done["message"]["versions"] == [first_id, done["message_id"]]  # ‹2/2›
    assert [f["saved"] for f in frames if f["type"] == "conversation"] == [[]]  # nothing but the reply is new
    rows = [m async for m in Message.objects.filter(conversation_id=conversation_id)]
    assert [m.role for m in rows] == ["user", "assistant", "assistant"]
    assert rows[1].parent_id == rows[2].parent_id == rows[0].pk
    reply = await Message.objects.aget(pk=done["message_id"])
    assert reply.params["seed"] == 2
    call = fake_pool.workers["fake-chat"].engine.calls[-1]
    assert [(m.role, m.content) for m in call["messages"]] == [("user", "tell me")]
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.leaf_id == reply.pk  # the new version is the one shown
    await communicator.disconnect()


async def test_a_new_prompt_cancels_the_running_reply_first(cookie, fake_pool):
    slow(fake_pool, delay=0.05)
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("first"))
    frames = await frames_until(communicator, "token")
    conversation_id = frames[0]["id"]
    await communicator.send_json_to(generate("second", conversation=conversation_id))
    frames = await frames_until(communicator, "done")
    assert frames[-1]["finish_reason"] == "cancelled"  # the first reply, cut short
    frames = await frames_until(communicator, "done")
    assert frames[-1]["finish_reason"] == "stop"
    contents = [m.content async for m in Message.objects.filter(conversation_id=conversation_id, role="user")]
    assert contents == ["first", "second"]
    await communicator.disconnect()


@pytest.mark.metering  # the meter writes the card's speed
async def test_completion_models_stream_a_plain_prompt_without_saving_a_conversation(cookie, fake_pool):
    communicator = await connect(cookie)
    frame = {"type": "generate", "mode": "completion", "model": "fake-completion", "content": "Once upon"}
    await communicator.send_json_to({**frame, "params": {"max_tokens": 4}})
    frames = await frames_until(communicator, "done")
    assert frames[0]["type"] == "started"
    assert "".join(f["text"] for f in frames if f["type"] == "token").startswith("and then")
    assert frames[-1]["finish_reason"] == "length" and frames[-1]["message_id"] is None
    assert fake_pool.workers["fake-completion"].engine.calls[0]["prompt"] == "Once upon"
    assert await Conversation.objects.acount() == 0
    assert (await ModelStats.objects.aget(model_id="fake-completion")).text_samples == 1
    await communicator.send_json_to({**frame, "model": "fake-chat"})
    assert (
        "serves text-to-text (/v1/chat/completions), not the completion Playground"
        in (await communicator.receive_json_from())["message"]
    )
    await communicator.disconnect()


async def test_engine_refusals_become_error_frames(cookie, fake_pool):
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("word " * 2100, params={"max_tokens": 10}))
    frames = await frames_until(communicator, "error")
    assert frames[-1]["code"] == "context_length_exceeded"
    await communicator.send_json_to(generate("short"))
    frames = await frames_until(communicator, "done")
    assert frames[-1]["finish_reason"] == "stop"
    await communicator.disconnect()


def test_frames_are_json_objects():
    assert json.loads(json.dumps(generate()))["type"] == "generate"
