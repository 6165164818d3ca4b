"""Chat rules: titles, the history sent to the model, and recording a reply once."""

from __future__ import annotations

import pytest

from inference import SamplingParams, Usage
from playground.catalog.models import ModelStats
from playground.chat import services
from playground.chat.models import Message
from playground.chat.selectors import conversation_history

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


def test_reply_record_saves_params_usage_metrics_and_replaces_a_regenerated_reply(user, fake_pool):
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
    second = services.reply_record(
        model_id="fake-chat",
        params=SamplingParams(),
        text="two",
        finish_reason="length",
        usage=Usage(prompt_tokens=3, completion_tokens=2),
        ttft_seconds=0.01,
        tokens_per_second=50.0,
        turn=again,
    )
    assert list(turn.conversation.messages.values_list("role", "content")) == [("user", "q"), ("assistant", "two")]
    assert (second.completion_tokens, second.finish_reason, second.tokens_per_second) == (2, "length", 50.0)
    assert not ModelStats.objects.exists()  # the card's speed is the meter's to record, not the message's
