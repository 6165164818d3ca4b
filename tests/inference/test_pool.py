"""How the pool sizes batching per model: slots from the served context, each request one slot's share."""

from __future__ import annotations

from pathlib import Path

from inference import ModelSpec
from inference.pool import batched


def spec(task: str = "text-to-text", n_ctx: int = 8192, engine: str = "llama") -> ModelSpec:
    return ModelSpec(id="m", name="M", task=task, engine=engine, path=Path("/m.gguf"), n_ctx=n_ctx)


def test_slots_split_the_served_context_into_shares_of_at_least_1024_tokens():
    slots, seen = batched(spec(n_ctx=8192), 8)
    assert (slots, seen.n_ctx) == (8, 1024)
    slots, seen = batched(spec(task="text-completion", n_ctx=4096), 8)
    assert (slots, seen.n_ctx) == (4, 1024)
    slots, seen = batched(spec(n_ctx=8192), 2)
    assert (slots, seen.n_ctx) == (2, 4096)


def test_models_that_cannot_batch_are_served_one_request_at_a_time_with_their_whole_context():
    for model, limit in (
        (spec(n_ctx=8192), 0),  # batching off
        (spec(n_ctx=8192), 1),
        (spec(n_ctx=1536), 8),  # too small to split
        (spec(task="embeddings", n_ctx=512), 8),
        (spec(engine="fake"), 8),
    ):
        slots, seen = batched(model, limit)
        assert slots == 0 and seen is model
