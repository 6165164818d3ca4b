"""Message actions on the Playground socket (fake engines): edit a message and answer it on a new branch, pick a
version with select, delete, Continue a reply cut off by max tokens; another user's messages are not found."""

from __future__ import annotations

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from playground.chat.models import Conversation, Message
from tests.chat.test_consumers import connect, frames_until, generate

pytestmark = pytest.mark.django_db(transaction=True)


async def turn(communicator: WebsocketCommunicator, frame: dict[str, Any]) -> list[dict[str, Any]]:
    await communicator.send_json_to(frame)
    frames = await frames_until(communicator, "done", "error")
    assert frames[-1]["type"] == "done", frames[-1]
    return frames


async def test_an_edited_message_is_answered_on_a_new_branch_and_both_can_be_shown(cookie, fake_pool):
    communicator = await connect(cookie)
    frames = await turn(communicator, generate("first question"))
    conversation_id = frames[0]["id"]
    (first,) = frames[0]["saved"]
    await turn(communicator, generate("second question", conversation=conversation_id))

    frames = await turn(
        communicator, {"type": "edit", "conversation": conversation_id, "message": first["id"], "content": "better"}
    )
    (edited,) = frames[0]["saved"]
    assert edited["role"] == "user" and edited["versions"] == [first["id"], edited["id"]]  # ‹2/2›
    assert "".join(f["text"] for f in frames if f["type"] == "token").startswith("You said: better")
    sent = fake_pool.workers["fake-chat"].engine.calls[-1]["messages"]
    assert [(m.role, m.content) for m in sent] == [("user", "better")]  # answered from there
    assert await Message.objects.filter(conversation_id=conversation_id).acount() == 6  # the old branch is kept

    # ‹1/2›: the old branch, as it was.
    await communicator.send_json_to({"type": "select", "conversation": conversation_id, "message": first["id"]})
    path = await communicator.receive_json_from()
    assert path["type"] == "path" and path["conversation"] == conversation_id
    assert [m["content"] for m in path["messages"] if m["role"] == "user"] == ["first question", "second question"]
    assert path["messages"][0]["versions"] == [first["id"], edited["id"]]
    # A new message now follows the branch shown.
    await turn(communicator, generate("third", conversation=conversation_id))
    sent = fake_pool.workers["fake-chat"].engine.calls[-1]["messages"]
    assert [m.content for m in sent if m.role == "user"] == ["first question", "second question", "third"]
    await communicator.disconnect()


async def test_delete_frames_answer_with_the_branch_shown(cookie, fake_pool):
    communicator = await connect(cookie)
    frames = await turn(communicator, generate("one"))
    conversation_id = frames[0]["id"]
    frames = await turn(communicator, generate("two", conversation=conversation_id))
    (two,) = frames[0]["saved"]
    frames = await turn(communicator, generate("three", conversation=conversation_id))
    last_reply = frames[-1]["message_id"]

    await communicator.send_json_to({"type": "delete", "conversation": conversation_id, "message": two["id"]})
    path = await communicator.receive_json_from()
    assert [m["content"] for m in path["messages"] if m["role"] == "user"] == ["one", "three"]
    assert path["messages"][-1]["id"] == last_reply and path["messages"][-1]["usage"]["completion_tokens"] > 0
    await communicator.send_json_to({"type": "delete", "conversation": conversation_id, "message": last_reply})
    path = await communicator.receive_json_from()
    assert [m["role"] for m in path["messages"]] == ["user", "assistant", "user"]
    # Regenerate answers the message left without a reply.
    frames = await turn(communicator, {"type": "regenerate", "conversation": conversation_id})
    assert "".join(f["text"] for f in frames if f["type"] == "token").startswith("You said: three")
    await communicator.disconnect()


async def test_continue_appends_to_a_reply_cut_off_by_max_tokens(cookie, fake_pool):
    communicator = await connect(cookie)
    frames = await turn(communicator, generate("tell me a story", params={"max_tokens": 4}))
    conversation_id, cut = frames[0]["id"], frames[-1]
    assert cut["finish_reason"] == "length"
    first_part = "".join(f["text"] for f in frames if f["type"] == "token")

    frames = await turn(communicator, {"type": "continue", "conversation": conversation_id, "params": {"seed": 1}})
    done = frames[-1]
    assert done["message_id"] == cut["message_id"] and [f["saved"] for f in frames[:1]] == [[]]
    more = "".join(f["text"] for f in frames if f["type"] == "token")
    call = fake_pool.workers["fake-chat"].engine.calls[-1]
    assert [(m.role, m.content) for m in call["messages"]] == [("user", "tell me a story")]
    assert call["continued"] == first_part and more.startswith("and so on")
    reply = await Message.objects.aget(pk=cut["message_id"])
    assert reply.content == first_part + more and done["message"]["content"] == reply.content
    assert reply.completion_tokens == 4 + done["usage"]["completion_tokens"]
    assert reply.finish_reason == done["finish_reason"] == "stop"
    assert await Message.objects.filter(conversation_id=conversation_id).acount() == 2
    # Only a reply cut off by max tokens continues.
    await communicator.send_json_to({"type": "continue", "conversation": conversation_id})
    frame = await communicator.receive_json_from()
    assert (frame["type"], frame["code"], frame["param"]) == ("error", "invalid_parameter", "message")
    await communicator.disconnect()


async def test_another_users_messages_are_not_found(cookie, fake_pool, other_user):
    theirs = await Conversation.objects.acreate(user=other_user, model_id="fake-chat", title="private")
    secret = await Message.objects.acreate(conversation=theirs, role="user", content="my secret")
    communicator = await connect(cookie)
    frames = await turn(communicator, generate("mine"))
    mine = frames[0]["id"]
    for kind in ("select", "delete", "edit", "regenerate", "continue"):
        # Their conversation, and their message inside mine, are both not found.
        await communicator.send_json_to({"type": kind, "conversation": theirs.pk, "message": secret.pk, "content": "x"})
        frame = await communicator.receive_json_from()
        assert (frame["code"], frame["param"]) == ("not_found", "conversation"), kind
        await communicator.send_json_to({"type": kind, "conversation": mine, "message": secret.pk, "content": "x"})
        frame = await communicator.receive_json_from()
        assert (frame["code"], frame["param"]) == ("not_found", "message"), kind
    await communicator.send_json_to({"type": "delete", "conversation": mine})
    frame = await communicator.receive_json_from()
    assert (frame["code"], frame["param"]) == ("missing_required_parameter", "message")
    assert await theirs.messages.acount() == 1 and await Message.objects.filter(conversation_id=mine).acount() == 2
    await communicator.disconnect()


def test_the_page_shows_the_branch_with_each_messages_versions(client, user, other_user, fake_pool):
    conversation = Conversation.objects.create(user=user, model_id="fake-chat", title="Branches")
    question = Message.objects.create(conversation=conversation, role="user", content="question")
    first = Message.objects.create(conversation=conversation, parent=question, role="assistant", content="first")
    second = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content="second <b>reply</b>",
        finish_reason="length",
        prompt_tokens=900,
        completion_tokens=64,
        dropped_messages=3,
    )
    conversation.leaf = second
    conversation.overflow = "refuse"
    conversation.save()
    client.force_login(user)
    url = reverse("card", args=["fake-chat"])
    body = client.get(url, {"tab": "playground", "conversation": conversation.pk}).content.decode()
    assert f'data-message-id="{second.pk}" data-versions="{first.pk},{second.pk}" data-finish="length"' in body
    assert f'data-message-id="{question.pk}" data-versions="{question.pk}"' in body
    assert "second &lt;b&gt;reply&lt;/b&gt;" in body and ">first<" not in body  # only the branch shown, escaped
    assert "3 oldest messages left out to fit the context" in body
    assert '<option value="refuse" selected>' in body and 'id="context-meter"' in body
    client.force_login(other_user)
    assert client.get(url, {"tab": "playground", "conversation": conversation.pk}).status_code == 404
