"""The batching engine's hand-off of a sequence's pieces to its reader (no model needed)."""

from __future__ import annotations

import queue

from inference.batching import _gathered
from inference.types import EngineError, TextChunk, Usage


def queued(*items: TextChunk | BaseException) -> queue.SimpleQueue[TextChunk | BaseException]:
    out: queue.SimpleQueue[TextChunk | BaseException] = queue.SimpleQueue()
    for item in items:
        out.put(item)
    return out


def test_pieces_already_there_reach_the_reader_as_one_chunk_ending_with_the_last():
    usage = Usage(prompt_tokens=3, completion_tokens=3)
    out = queued(TextChunk("Hel"), TextChunk("lo"), TextChunk("!", finish_reason="stop", usage=usage))
    assert _gathered(out) == (TextChunk("Hello!", finish_reason="stop", usage=usage), None)


def test_a_reader_that_keeps_up_gets_each_piece_and_nothing_past_the_reply_is_taken():
    out = queued(TextChunk("a"))
    assert _gathered(out) == (TextChunk("a"), None)
    out = queued(TextChunk("b", finish_reason="length", usage=Usage()), TextChunk("not this reply's"))
    assert _gathered(out)[0] == TextChunk("b", finish_reason="length", usage=Usage())
    assert out.qsize() == 1


def test_an_error_comes_after_the_text_before_it():
    error = EngineError("batched decoding failed")
    assert _gathered(queued(TextChunk("par"), TextChunk("tial"), error)) == (TextChunk("partial"), error)
    assert _gathered(queued(error)) == (None, error)
