"""all-MiniLM-L6-v2 through llama.cpp against the reference values in shared/MODELS.md."""

from __future__ import annotations

import math

import pytest

from inference.types import ContextOverflowError, InvalidRequestError


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embedding_matches_the_reference_vector(minilm):
    result = minilm.embed(["This is an example sentence"])
    vector = result.vectors[0]
    assert len(vector) == 384
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-6)
    assert vector[:5] == pytest.approx([0.0677, 0.0635, 0.0487, 0.0793, 0.0374], abs=2e-3)
    assert result.usage.prompt_tokens == 7  # [CLS] this is an example sentence [SEP]


def test_similar_sentences_have_the_reference_cosine(minilm):
    a, b = minilm.embed(["A man is eating food.", "A man is eating a piece of bread."]).vectors
    assert cosine(a, b) == pytest.approx(0.7553, abs=3e-3)


def test_batch_equals_one_at_a_time_and_usage_adds_up(minilm):
    texts = ["first text", "a second, longer text about something else", "third"]
    batch = minilm.embed(texts)
    for text, vector in zip(texts, batch.vectors, strict=True):
        single = minilm.embed([text])
        assert vector == pytest.approx(single.vectors[0], abs=1e-5)
    assert batch.usage.prompt_tokens == sum(minilm.count_tokens(t) for t in texts)


def test_empty_and_overlong_input_are_refused(minilm):
    with pytest.raises(InvalidRequestError, match="at least one"):
        minilm.embed([])
    with pytest.raises(InvalidRequestError, match=r"input\[1\]"):
        minilm.embed(["ok", ""])
    with pytest.raises(ContextOverflowError, match=r"input\[0\] is \d+ tokens"):
        minilm.embed(["word " * 600])


def test_a_stopped_embedding_stops_between_texts(minilm):
    import threading

    stop = threading.Event()
    stop.set()
    with pytest.raises(InvalidRequestError, match="stopped"):
        minilm.embed(["one", "two"], stop)
