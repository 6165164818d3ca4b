"""How the pool sizes batching per model: slots from the served context; each request may use all of it."""

from __future__ import annotations

from pathlib import Path

from inference import EnginePool, ModelSpec
from inference.device import DeviceDecision
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


def test_the_fingerprint_changes_with_the_weights_the_device_and_the_upstreams(tmp_path):
    import os

    from inference.catalog import UpstreamSpec

    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF" + b"\0" * 64)
    spec = ModelSpec(id="m", name="m", task="text-to-text", engine="llama", path=weights, n_ctx=512)
    remote = ModelSpec(
        id="r",
        name="r",
        task="text-to-text",
        engine="openai",
        path=Path(),
        upstreams=(UpstreamSpec("http://a/v1", "x"),),
    )

    def pool(*specs: ModelSpec, device: str = "cpu") -> EnginePool:
        return EnginePool(specs, device=DeviceDecision(device, "test"), threads=1)

    first = pool(spec, remote)
    fp = first.fingerprint("m")
    assert fp.startswith("fp_") and len(fp) == 15 and fp == pool(spec, remote).fingerprint("m")  # stable
    assert fp != first.fingerprint("r")
    assert pool(spec, device="cuda").fingerprint("m") != fp  # another device
    first.workers["m"].device = "cpu"  # a model that fell back from the GPU says where it really runs
    assert first.fingerprint("m") == fp
    weights.write_bytes(b"GGUF" + b"\1" * 65)  # other weights
    os.utime(weights, ns=(1, 1))
    assert pool(spec).fingerprint("m") != fp
    moved = ModelSpec(
        id="r",
        name="r",
        task="text-to-text",
        engine="openai",
        path=Path(),
        upstreams=(UpstreamSpec("http://b/v1", "x"),),
    )
    assert pool(moved).fingerprint("r") != first.fingerprint("r")


def test_a_pool_of_two_llama_models_or_more_decodes_them_on_the_shared_lanes(monkeypatch):
    from dataclasses import replace

    from inference.lanes import LANES

    monkeypatch.setattr(LANES, "shared", False)
    cpu = DeviceDecision("cpu", "test")
    EnginePool([spec(), spec(engine="whisper", task="speech-to-text")], device=cpu, threads=1)
    assert not LANES.shared  # one llama.cpp model: it decodes on its own worker thread
    EnginePool([spec(), replace(spec(task="embeddings"), id="e")], device=cpu, threads=1)
    assert LANES.shared
