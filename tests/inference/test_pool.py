"""How the pool sizes batching per model: slots from the served context; each request may use all of it."""

from __future__ import annotations

from pathlib import Path

from inference import ModelSpec
from inference.pool import batch_slots_for


def spec(task: str = "text-to-text", n_ctx: int = 8192, engine: str = "llama") -> ModelSpec:
    return ModelSpec(id="m", name="M", task=task, engine=engine, path=Path("/m.gguf"), n_ctx=n_ctx)


MB = 2**20
SMOLLM2_TOKEN = 23040  # bytes of KV cache per token: 30 layers x 3 KV heads x (64 + 64) x 2 bytes


def test_each_slot_has_the_whole_context_and_the_slots_fit_the_kv_budget():
    per_token = lambda _path: SMOLLM2_TOKEN  # noqa: E731
    assert batch_slots_for(spec(n_ctx=8192), 8, 1024 * MB, per_token) == 5  # 184 MB a slot
    assert batch_slots_for(spec(n_ctx=8192), 8, 4096 * MB, per_token) == 8  # capped by batch_slots
    assert batch_slots_for(spec(task="text-completion", n_ctx=2048), 3, 1024 * MB, per_token) == 3
    assert batch_slots_for(spec(n_ctx=8192), 8, 300 * MB, per_token) == 0  # one slot: served one at a time


def test_the_kv_size_is_read_from_the_gguf_header():
    from inference.pool import kv_bytes_per_token
    from tests.inference.conftest import catalog_spec

    assert kv_bytes_per_token(catalog_spec("smollm2-135m-instruct").path) == SMOLLM2_TOKEN
    assert kv_bytes_per_token(Path("/nonexistent.gguf")) is None


def test_models_that_cannot_batch_are_served_one_request_at_a_time_with_their_whole_context():
    for model, limit in (
        (spec(n_ctx=8192), 0),  # batching off
        (spec(n_ctx=8192), 1),
        (spec(task="embeddings", n_ctx=512), 8),
        (spec(engine="fake"), 8),
    ):
        assert batch_slots_for(model, limit, 4096 * MB, lambda _path: SMOLLM2_TOKEN) == 0
