"""Fitting a conversation into the context: the oldest exchanges after the system prompt are left out (never the
last user message), or the request is refused; the last chunk says how many messages were left out."""

from __future__ import annotations

import pytest

from inference.fake import FakeTextEngine
from inference.text import fit_messages
from inference.types import ChatMessage, ContextOverflowError, SamplingParams

SYSTEM = ChatMessage("system", "Be brief.")


def conversation(exchanges: int, words: int = 10) -> list[ChatMessage]:
    turns = [SYSTEM]
    for n in range(exchanges):
        turns += [ChatMessage("user", f"question {n} " + "word " * words), ChatMessage("assistant", "answer " * words)]
    return [*turns, ChatMessage("user", "the last question")]


def words(messages: list[ChatMessage]) -> list[str]:
    return [w for m in messages for w in m.content.split()]


def test_the_oldest_exchanges_go_first_and_the_system_prompt_and_last_question_stay():
    messages = conversation(6)
    tokens, kept = fit_messages(messages, words, n_ctx=60, max_tokens=10, overflow="drop_oldest")
    assert kept[0] == SYSTEM and kept[-1].content == "the last question"
    assert kept[1].content.startswith("question 4")  # exchanges 0-3 left out, whole
    assert len(tokens) + 10 <= 60


def test_refuse_and_what_cannot_fit_keep_everything_for_the_check_to_refuse():
    messages = conversation(6)
    assert fit_messages(messages, words, n_ctx=60, max_tokens=10, overflow="refuse")[1] == messages
    fits = conversation(1)
    assert fit_messages(fits, words, n_ctx=500, max_tokens=10, overflow="drop_oldest")[1] == fits
    _tokens, kept = fit_messages(messages, words, n_ctx=5, max_tokens=10, overflow="drop_oldest")
    assert kept[-1].content == "the last question"  # the least it can send; the engine's check refuses it


def test_the_engine_says_how_many_messages_it_left_out():
    engine = FakeTextEngine(n_ctx=120)
    params = SamplingParams(max_tokens=20, seed=1)
    chunks = list(engine.chat(conversation(8), params, overflow="drop_oldest"))
    assert chunks[-1].finish_reason is not None and chunks[-1].dropped_messages > 0
    assert len(engine.calls[-1]["messages"]) == len(conversation(8)) - chunks[-1].dropped_messages
    with pytest.raises(ContextOverflowError):
        engine.chat(conversation(8), params)  # refuse: the default
    assert list(engine.chat(conversation(0), params))[-1].dropped_messages == 0
