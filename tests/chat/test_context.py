"""Context management on the Playground socket (fake engines: a context of 2048 "tokens", one a word and two a
message): the oldest turns left out when a conversation outgrows the context, the per-conversation setting, a
refused message never saved, and the context meter's count frames."""

from __future__ import annotations

import time
from typing import Any

import pytest

from playground import serving
from playground.chat.models import Conversation, Message
from tests.chat.test_consumers import connect, frames_until, generate

pytestmark = pytest.mark.django_db(transaction=True)

HUGE = "word " * 900  # two exchanges of these fill the context
LONG = "word " * 300  # 302 "tokens" as a message; the fake's reply echoes it, cut off at max tokens (64)


async def test_a_long_conversation_keeps_answering_with_the_oldest_turns_left_out(cookie, fake_pool):
    communicator = await connect(cookie)
    conversation_id = None
    dropped = []
    for n in range(8):
        await communicator.send_json_to(
            generate(f"{n} {LONG}", conversation=conversation_id, system="Be brief.", params={"max_tokens": 64})
        )
        frames = await frames_until(communicator, "done", "error")
        done = frames[-1]
        assert done["type"] == "done" and done["finish_reason"] == "length", done
        conversation_id = frames[0]["id"]
        dropped.append(done["dropped_messages"])
    # An exchange is about 368 tokens: the sixth no longer fits with the system prompt and 64 max tokens.
    assert dropped[:5] == [0] * 5 and all(d > 0 for d in dropped[5:]), dropped
    assert dropped == sorted(dropped)  # the longer the conversation, the more is left out
    sent = fake_pool.workers["fake-chat"].engine.calls[-1]["messages"]
    assert sent[0].content == "Be brief."  # the system prompt always stays
    assert sent[-1].content.startswith("7 ") and not any(m.content.startswith("0 ") for m in sent)
    assert sum(len(m.content.split()) + 2 for m in sent) + 64 <= 2048
    reply = await Message.objects.aget(pk=done["message_id"])
    assert reply.dropped_messages == dropped[-1]  # and the saved reply says so
    # Everything is still saved and shown: only the prompt left the oldest turns out.
    assert await Message.objects.filter(conversation_id=conversation_id).acount() == 16
    await communicator.disconnect()


async def test_refuse_setting_refuses_and_the_refused_message_is_never_saved(cookie, fake_pool):
    communicator = await connect(cookie)
    await communicator.send_json_to(generate(HUGE, overflow="refuse", params={"max_tokens": 64}))
    frames = await frames_until(communicator, "done")
    conversation_id = frames[0]["id"]
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.overflow == "refuse"  # saved with the conversation
    await communicator.send_json_to(generate(HUGE, conversation=conversation_id, params={"max_tokens": 64}))
    assert (await frames_until(communicator, "done", "error"))[-1]["type"] == "done"  # 1,935 tokens of 2,048
    await communicator.send_json_to(generate(HUGE, conversation=conversation_id, params={"max_tokens": 64}))
    frames = await frames_until(communicator, "done", "error")
    refused = frames[-1]
    assert refused["type"] == "error" and refused["code"] == "context_length_exceeded"
    assert not any(f["type"] == "conversation" for f in frames)  # before any conversation frame: not saved
    rows = [m.content async for m in Message.objects.filter(conversation_id=conversation_id, role="user")]
    assert len(rows) == 2  # the refused third one is not there, so the next message is not refused for it
    await communicator.send_json_to(generate("short", conversation=conversation_id, params={"max_tokens": 64}))
    frames = await frames_until(communicator, "done", "error")
    assert frames[-1]["type"] == "done" and frames[-1]["dropped_messages"] == 0
    await communicator.send_json_to(
        generate(HUGE, conversation=conversation_id, overflow="drop_oldest", params={"max_tokens": 64})
    )
    frames = await frames_until(communicator, "done", "error")
    assert frames[-1]["type"] == "done" and frames[-1]["dropped_messages"] == 2  # the first exchange
    await conversation.arefresh_from_db()
    assert conversation.overflow == "drop_oldest"
    await communicator.send_json_to(generate("hi", conversation=conversation_id, overflow="sometimes"))
    frame = await communicator.receive_json_from()
    assert (frame["code"], frame["param"]) == ("invalid_parameter", "overflow")
    await communicator.disconnect()


async def test_a_refused_first_message_creates_no_conversation(cookie, fake_pool):
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("word " * 2100, params={"max_tokens": 10}))
    frames = await frames_until(communicator, "error")
    assert [f["type"] for f in frames] == ["error"] and frames[0]["code"] == "context_length_exceeded"
    assert await Conversation.objects.acount() == 0 and await Message.objects.acount() == 0
    await communicator.disconnect()


async def test_count_frames_read_the_context_for_the_draft(cookie, fake_pool, other_user):
    communicator = await connect(cookie)
    await communicator.send_json_to(generate(LONG, system="Be brief."))
    conversation_id = (await frames_until(communicator, "done"))[0]["id"]
    count = {"type": "count", "model": "fake-chat", "conversation": conversation_id, "system": "Be brief."}
    await communicator.send_json_to({**count, "seq": 7, "content": "one two three", "params": {"max_tokens": 100}})
    reading = await communicator.receive_json_from()
    assert reading["type"] == "count" and reading["seq"] == 7
    assert reading["draft_tokens"] == 5 and reading["n_ctx"] == 2048 and reading["max_tokens"] == 100
    assert reading["prompt_tokens"] == reading["history_tokens"] + 5 and reading["fits"]
    assert reading["overflow"] == "drop_oldest"
    # A blank max tokens is the model's default; a draft over the context cannot fit however much is left out.
    await communicator.send_json_to({**count, "seq": 8, "content": "x " * 2100, "params": {"max_tokens": ""}})
    reading = await communicator.receive_json_from()
    assert reading["max_tokens"] == 64 and not reading["fits"] and reading["dropped"] is None
    # A count never refuses: what is wrong comes back in the count frame, not as an error frame.
    theirs = await Conversation.objects.acreate(user=other_user, model_id="fake-chat")
    await communicator.send_json_to({**count, "seq": 9, "conversation": theirs.pk, "content": "hi"})
    assert await communicator.receive_json_from() == {"type": "count", "seq": 9, "error": "conversation not found"}
    await communicator.send_json_to({**count, "seq": 10, "model": "fake-embed", "content": "hi"})
    frame = await communicator.receive_json_from()
    assert frame["type"] == "count" and frame["seq"] == 10 and "embeddings" in frame["error"]
    await communicator.disconnect()


async def test_the_overflow_setting_is_saved_at_once(cookie, fake_pool, other_user):
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("hi"))
    conversation_id = (await frames_until(communicator, "done"))[0]["id"]
    await communicator.send_json_to({"type": "settings", "conversation": conversation_id, "overflow": "refuse"})
    assert await communicator.receive_json_from() == {
        "type": "settings",
        "conversation": conversation_id,
        "overflow": "refuse",
    }
    assert (await Conversation.objects.aget(pk=conversation_id)).overflow == "refuse"
    await communicator.send_json_to({"type": "settings", "conversation": conversation_id, "overflow": "most"})
    assert (await communicator.receive_json_from())["param"] == "overflow"
    theirs = await Conversation.objects.acreate(user=other_user, model_id="fake-chat")
    await communicator.send_json_to({"type": "settings", "conversation": theirs.pk, "overflow": "refuse"})
    assert (await communicator.receive_json_from())["code"] == "not_found"
    assert (await Conversation.objects.aget(pk=theirs.pk)).overflow == "drop_oldest"
    await communicator.disconnect()


async def test_a_burst_of_counts_is_counted_once_at_a_time_latest_first(cookie, fake_pool, monkeypatch):
    counted = serving.count_prompt_tokens

    def slow(**kwargs: Any) -> int:  # a count takes a while: the burst arrives meanwhile, however fast the machine
        time.sleep(0.05)
        return counted(**kwargs)

    monkeypatch.setattr(serving, "count_prompt_tokens", slow)
    communicator = await connect(cookie)
    count = {"type": "count", "model": "fake-chat", "conversation": None, "system": ""}
    for seq in range(1, 31):
        await communicator.send_json_to({**count, "seq": seq, "content": "word " * seq})
    readings = [await communicator.receive_json_from(timeout=10)]
    while readings[-1]["seq"] != 30:
        readings.append(await communicator.receive_json_from(timeout=10))
    assert len(readings) < 30  # the frames that waited behind a newer one were never counted
    assert readings[-1]["draft_tokens"] == 30 + 2
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()
