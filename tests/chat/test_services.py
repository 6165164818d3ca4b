"""Chat rules: titles, the history sent to the model, and recording a reply once."""

from __future__ import annotations

import pytest

from inference import SamplingParams, Usage
from playground.catalog.models import ModelStats
from playground.chat import services
from playground.chat.models import Conversation, Message
from playground.chat.selectors import conversation_history, conversation_messages, conversation_path
from playground.contract.errors import Problem

pytestmark = pytest.mark.django_db


def test_title_is_the_first_line_cut_at_a_word():
    assert services.title_from("\n  Hello there  \nmore") == "Hello there"
    long = "word " * 30
    title = services.title_from(long)
    assert len(title) <= services.TITLE_LENGTH + 1 and title.endswith("word…")
    assert services.title_from("   ") == "New conversation"


def test_history_skips_empty_replies_and_regenerate_answers_the_last_user_message(user, fake_pool):
    turn = services.turn_start(user=user, model_id="fake-chat", conversation=None, system_prompt="Sys", content="a")
    services.reply_record(
        model_id="fake-chat",
        params=SamplingParams(),
        text="",
        finish_reason="cancelled",
        usage=Usage(prompt_tokens=3),
        ttft_seconds=None,
        tokens_per_second=None,
        turn=turn,
    )
    history = conversation_history(conversation=turn.conversation)
    assert [(m.role, m.content) for m in history] == [("system", "Sys"), ("user", "a")]
    again = services.turn_regenerate(conversation=turn.conversation, model_id="fake-chat")
    assert again.replaces == Message.objects.get(role="assistant").pk
    assert not ModelStats.objects.exists()  # no speed measured: nothing to fold in


def record(turn: services.Turn, text: str, finish_reason: str = "stop", **extra: object) -> Message:
    message = services.reply_record(
        model_id="fake-chat",
        params=SamplingParams(),
        text=text,
        finish_reason=finish_reason,
        usage=Usage(prompt_tokens=3, completion_tokens=2),
        ttft_seconds=0.01,
        tokens_per_second=50.0,
        turn=turn,
        **extra,  # type: ignore[arg-type]
    )
    assert message is not None
    return message


def shown(conversation: Conversation) -> list[tuple[str, str]]:
    conversation.refresh_from_db()
    return [(m.role, m.content) for m in conversation_path(conversation=conversation)]


def exchange(user, conversation: Conversation | None, content: str, reply: str) -> Conversation:  # noqa: ANN001
    turn = services.turn_start(
        user=user, model_id="fake-chat", conversation=conversation, system_prompt="", content=content
    )
    record(turn, reply)
    return turn.conversation


def test_reply_record_saves_params_usage_metrics_and_a_regenerated_reply_is_a_new_version(user, fake_pool):
    turn = services.turn_start(user=user, model_id="fake-chat", conversation=None, system_prompt="", content="q")
    first = services.reply_record(
        model_id="fake-chat",
        params=SamplingParams(stop=("x",)),
        text="one",
        finish_reason="stop",
        usage=Usage(prompt_tokens=3, completion_tokens=1),
        ttft_seconds=0.0123,
        tokens_per_second=None,
        turn=turn,
    )
    assert first.params["stop"] == ["x"] and first.ttft_ms == 12.3
    again = services.turn_regenerate(conversation=turn.conversation, model_id="fake-chat")
    assert (
        services.reply_record(  # not accepted by the model yet: nothing is recorded
            model_id="fake-chat",
            params=SamplingParams(),
            text="lost",
            finish_reason="stop",
            usage=Usage(),
            ttft_seconds=None,
            tokens_per_second=None,
            turn=again,
        )
        is None
    )
    second = record(services.turn_accept(again), "two", finish_reason="length", dropped_messages=2)
    assert shown(turn.conversation) == [("user", "q"), ("assistant", "two")]
    assert list(turn.conversation.messages.values_list("role", "content")) == [
        ("user", "q"),
        ("assistant", "one"),
        ("assistant", "two"),
    ]
    assert first.parent_id == second.parent_id  # versions of one reply
    assert (second.completion_tokens, second.finish_reason, second.tokens_per_second) == (2, "length", 50.0)
    assert second.dropped_messages == 2
    assert not ModelStats.objects.exists()  # the card's speed is the meter's to record, not the message's


def test_a_turn_writes_nothing_until_the_model_takes_it(user, fake_pool):
    turn = services.turn_prepare(
        user=user, model_id="fake-chat", conversation=None, system_prompt="S", content="hello", overflow="refuse"
    )
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert [(m.role, m.content) for m in turn.history] == [("system", "S"), ("user", "hello")]
    assert turn.overflow_mode == "refuse"
    conversation = exchange(user, None, "first", "reply one")
    later = services.turn_prepare(
        user=user, model_id="fake-chat", conversation=conversation, system_prompt="", content="second"
    )
    assert Message.objects.count() == 2 and later.overflow_mode == "drop_oldest"
    accepted = services.turn_accept(later)
    (saved,) = accepted.saved
    assert Message.objects.get(pk=saved).parent_id == Message.objects.get(content="reply one").pk
    assert Conversation.objects.get().leaf_id == saved


def test_edit_starts_a_new_branch_and_the_old_one_can_be_shown_again(user, fake_pool):
    conversation = exchange(user, None, "one", "reply one")
    conversation = exchange(user, conversation, "two", "reply two")
    conversation = exchange(user, conversation, "three", "reply three")
    two = Message.objects.get(content="two")
    turn = services.turn_edit(conversation=conversation, message_id=two.pk, model_id="fake-chat", content="TWO")
    assert [m.content for m in turn.history] == ["one", "reply one", "TWO"]
    turn = services.turn_accept(turn)
    record(turn, "reply TWO")
    assert shown(conversation) == [
        ("user", "one"),
        ("assistant", "reply one"),
        ("user", "TWO"),
        ("assistant", "reply TWO"),
    ]
    messages = conversation_messages(conversation)
    assert messages[2].version_ids == [two.pk, turn.saved[0]]  # ‹2/2›
    # ‹1/2›: the old branch, down to its end.
    services.conversation_select(conversation=conversation, message_id=two.pk)
    assert [c for _, c in shown(conversation)] == ["one", "reply one", "two", "reply two", "three", "reply three"]
    services.conversation_select(conversation=conversation, message_id=turn.saved[0])
    assert [c for _, c in shown(conversation)][-1] == "reply TWO"
    with pytest.raises(Problem) as refused:
        services.turn_edit(
            conversation=conversation,
            message_id=Message.objects.get(content="reply one").pk,
            model_id="fake-chat",
            content="x",
        )
    assert refused.value.param == "message"


def test_a_picked_version_shows_what_was_said_after_it(user, fake_pool):
    conversation = exchange(user, None, "q", "A")
    first = Message.objects.get(content="A")
    record(services.turn_accept(services.turn_regenerate(conversation=conversation, model_id="fake-chat")), "B")
    services.conversation_select(conversation=conversation, message_id=first.pk)
    exchange(user, conversation, "after A", "reply after A")
    services.conversation_select(conversation=conversation, message_id=Message.objects.get(content="B").pk)
    assert [c for _, c in shown(conversation)] == ["q", "B"]
    services.conversation_select(conversation=conversation, message_id=first.pk)
    assert [c for _, c in shown(conversation)] == ["q", "A", "after A", "reply after A"]


def test_deleting_a_user_message_removes_its_exchange_and_keeps_what_follows(user, fake_pool):
    conversation = exchange(user, None, "one", "reply one")
    conversation = exchange(user, conversation, "two", "reply two")
    conversation = exchange(user, conversation, "three", "reply three")
    two = Message.objects.get(content="two")
    record(
        services.turn_accept(
            services.turn_regenerate(
                conversation=conversation, model_id="fake-chat", message_id=Message.objects.get(content="reply two").pk
            )
        ),
        "reply two again",
    )
    services.conversation_select(conversation=conversation, message_id=Message.objects.get(content="reply two").pk)
    services.message_delete(conversation=conversation, message_id=two.pk)
    assert [c for _, c in shown(conversation)] == ["one", "reply one", "three", "reply three"]
    assert not Message.objects.filter(content__in=["two", "reply two", "reply two again"]).exists()


def test_deleting_a_reply_removes_that_version_and_what_followed_it(user, fake_pool):
    conversation = exchange(user, None, "q", "A")
    conversation = exchange(user, conversation, "more", "reply more")
    a = Message.objects.get(content="A")
    record(
        services.turn_accept(
            services.turn_regenerate(conversation=conversation, model_id="fake-chat", message_id=a.pk)
        ),
        "B",
    )
    services.conversation_select(conversation=conversation, message_id=a.pk)
    services.message_delete(conversation=conversation, message_id=a.pk)
    assert [c for _, c in shown(conversation)] == ["q", "B"]  # the other version is shown
    assert not Message.objects.filter(content__in=["A", "more", "reply more"]).exists()
    services.message_delete(conversation=conversation, message_id=Message.objects.get(content="B").pk)
    assert shown(conversation) == [("user", "q")]  # unanswered: Regenerate answers it
    turn = services.turn_regenerate(conversation=conversation, model_id="fake-chat")
    assert [m.content for m in turn.history] == ["q"] and turn.parent == Message.objects.get(content="q").pk
    services.message_delete(conversation=conversation, message_id=Message.objects.get(content="q").pk)
    assert shown(conversation) == [] and Conversation.objects.get().leaf_id is None


def test_another_conversations_message_is_not_found(user, other_user, fake_pool):
    mine = exchange(user, None, "mine", "reply")
    theirs = exchange(other_user, None, "theirs", "their reply")
    their_message = Message.objects.get(content="theirs")
    for action in (services.conversation_select, services.message_delete):
        with pytest.raises(Problem) as refused:
            action(conversation=mine, message_id=their_message.pk)
        assert (refused.value.code, refused.value.param) == ("not_found", "message")
    with pytest.raises(Problem):
        services.turn_edit(conversation=mine, message_id=their_message.pk, model_id="fake-chat", content="x")
    assert shown(theirs) == [("user", "theirs"), ("assistant", "their reply")]


def test_continue_appends_to_a_reply_cut_off_by_max_tokens(user, fake_pool):
    turn = services.turn_start(user=user, model_id="fake-chat", conversation=None, system_prompt="", content="q")
    cut = record(turn, "The start", finish_reason="length")
    with pytest.raises(Problem):  # only the last reply, cut off by length
        services.turn_continue(conversation=turn.conversation, model_id="fake-chat", message_id=turn.saved[0])
    more = services.turn_continue(conversation=turn.conversation, model_id="fake-chat")
    assert [(m.role, m.content) for m in more.history] == [("user", "q"), ("assistant", "The start")]
    record(services.turn_accept(more), " and the end.")
    cut.refresh_from_db()
    assert (cut.content, cut.finish_reason, cut.completion_tokens) == ("The start and the end.", "stop", 4)
    assert Message.objects.count() == 2
    with pytest.raises(Problem):
        services.turn_continue(conversation=turn.conversation, model_id="fake-chat")  # finished with "stop"


def test_conversations_saved_before_branches_are_one_line(user, fake_pool):
    conversation = Conversation.objects.create(user=user, model_id="fake-chat")
    for role, content in [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")]:
        Message.objects.create(conversation=conversation, role=role, content=content)
    assert [c for _, c in shown(conversation)] == ["a", "b", "c", "d"]
    turn = services.turn_accept(
        services.turn_prepare(user=user, model_id="fake-chat", conversation=conversation, system_prompt="", content="e")
    )
    assert [c for _, c in shown(conversation)] == ["a", "b", "c", "d", "e"]
    assert Message.objects.get(pk=turn.saved[0]).parent_id == Message.objects.get(content="d").pk


def test_the_context_reading_counts_history_and_draft_and_what_would_be_left_out(user, fake_pool):
    conversation = exchange(user, None, "word " * 300, "reply " * 300)
    conversation = exchange(user, conversation, "word " * 300, "reply " * 300)
    path = conversation_path(conversation=conversation)

    def read(draft: str, max_tokens: int, overflow: str = "drop_oldest") -> dict:
        return services.context_read(
            model_id="fake-chat",
            system_prompt="Be brief.",
            path=path,
            draft=draft,
            max_tokens=max_tokens,
            overflow=overflow,
        )

    # The fake's prompt: a token a word, two a message (tests/conftest.py: a context of 2048).
    reading = read("three words here", 64)
    assert reading["history_tokens"] == (2 + 2) + 4 * (300 + 2)
    assert reading["draft_tokens"] == 3 + 2
    assert reading["prompt_tokens"] == reading["history_tokens"] + 5
    assert reading["min_prompt_tokens"] == (2 + 2) + 5  # the system prompt and the draft
    assert (reading["n_ctx"], reading["fits"], reading["dropped"]) == (2048, True, 0)
    over = read("three words here", 900)
    assert not over["fits"] and over["dropped"] == 2  # the first exchange
    assert read("three words here", 900, "refuse")["dropped"] is None
    assert read("x " * 2100, 64)["dropped"] is None  # nothing left out makes it fit
