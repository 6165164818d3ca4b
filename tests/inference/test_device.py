"""The device decision, per engine family, and the per-model fallback to CPU after a failed warm-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference import device as device_module
from inference.catalog import ModelSpec
from inference.device import DeviceDecision, decide_device
from inference.fake import FakeTextEngine
from inference.pool import EnginePool, load_on_device

SPEC = ModelSpec(id="m", name="m", task="text-to-text", engine="whisper", path=Path("/x"))


def test_cpu_can_be_forced():
    decision = decide_device("cpu")
    assert decision.device == "cpu" and "forced" in decision.reason
    assert {d.device for d in decision.engines.values()} == {"cpu"}


def probes(monkeypatch, **answers):
    for family, answer in answers.items():
        monkeypatch.setitem(device_module.PROBES, family, lambda answer=answer: answer)


def test_each_engine_family_asks_its_own_library(monkeypatch):
    probes(
        monkeypatch,
        llama=(True, "llama.cpp built with GPU offload and sees a GPU"),
        whisper=(False, "CTranslate2 could not query CUDA (libcublas.so.12: cannot open shared object file)"),
        piper=(False, "onnxruntime has no CUDA provider"),
    )
    decision = decide_device("auto")
    # A broken CTranslate2 install keeps speech on the CPU; llama.cpp still gets the GPU.
    assert decision.for_engine("llama").device == "cuda"
    assert decision.for_engine("whisper").device == "cpu" and "libcublas" in decision.for_engine("whisper").reason
    assert decision.for_engine("piper").device == "cpu"
    assert decision.device == "cuda" and "faster-whisper on CPU: CTranslate2 could not" in decision.reason
    assert "llama.cpp on CUDA: llama.cpp built with GPU offload" in decision.reason
    assert decision.for_engine("fake") is decision


def test_forcing_cuda_keeps_the_reason_it_may_not_work(monkeypatch):
    probes(monkeypatch, llama=(False, "no GPU"), whisper=(False, "no GPU"), piper=(False, "no GPU"))
    decision = decide_device("cuda")
    assert decision.for_engine("whisper").device == "cuda" and "although no GPU" in decision.reason


def test_real_probes_on_this_machine_give_a_reason_per_family():
    decision = decide_device("auto")
    assert decision.device in ("cpu", "cuda") and decision.reason
    assert set(decision.engines) == {"llama", "whisper", "piper"}
    assert all(d.reason for d in decision.engines.values())


def test_unknown_override_is_refused():
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        decide_device("tpu")


def test_model_that_fails_to_load_on_the_gpu_falls_back_to_cpu_and_says_so():
    def factory(spec: ModelSpec, gpu: bool, threads: int) -> FakeTextEngine:
        if gpu:
            raise RuntimeError("CUDA out of memory")
        return FakeTextEngine()

    loaded = load_on_device(SPEC, DeviceDecision("cuda", "test"), 1, factory)
    assert isinstance(loaded.engine, FakeTextEngine) and loaded.device == "cpu"
    assert "CUDA out of memory" in loaded.note and "fell back to CPU" in loaded.note


class BrokenOnGpu(FakeTextEngine):
    """Loads, then fails its first real inference: a missing CUDA library shows up only here."""

    def chat(self, *args: object, **kwargs: object) -> object:
        raise RuntimeError("cuBLAS failed: libcublas.so.12 not found")


def test_model_whose_warm_up_fails_on_the_gpu_falls_back_to_cpu_and_health_says_why(client):
    from playground import engines

    made: list[bool] = []

    def factory(spec: ModelSpec, gpu: bool, threads: int) -> FakeTextEngine:
        made.append(gpu)
        return BrokenOnGpu() if gpu else FakeTextEngine()

    pool = EnginePool([SPEC], device=DeviceDecision("cuda", "test"), threads=1, factory=factory)
    engines.set_pool(pool)
    try:
        pool.warm(["m"])[0].result()
        assert made == [True, False]
        worker = pool.workers["m"]
        assert worker.state == "loaded" and worker.device == "cpu"
        assert worker.engine.calls[0]["kind"] == "chat"  # the CPU engine was proved too
        (model,) = client.get("/health").json()["models"]
        assert model["device"] == "cpu" and model["state"] == "loaded"
        assert "libcublas.so.12" in model["note"] and "fell back to CPU" in model["device_reason"]
    finally:
        engines.set_pool(None)


def test_model_whose_warm_up_fails_on_the_cpu_does_not_load_and_says_why():
    pool = EnginePool([SPEC], device=DeviceDecision("cpu", "test"), threads=1, factory=lambda s, g, t: BrokenOnGpu())
    with pytest.raises(Exception, match="libcublas"):
        pool.warm(["m"])[0].result()
    assert pool.workers["m"].state == "failed" and "libcublas" in pool.workers["m"].error


def test_model_on_cpu_decision_never_tries_the_gpu():
    seen = []
    loaded = load_on_device(
        SPEC, DeviceDecision("cpu", "test"), 1, lambda s, gpu, t: seen.append(gpu) or FakeTextEngine()
    )
    assert seen == [False] and loaded.device == "cpu" and loaded.note == ""


@pytest.mark.real_model
def test_real_whisper_forced_onto_cuda_without_its_libraries_runs_on_the_cpu_and_names_them():
    from inference.pool import build_engine
    from inference.speech import load_cuda_libraries
    from tests.inference.conftest import catalog_spec

    if not load_cuda_libraries():
        pytest.skip("this machine has CTranslate2's CUDA 12 libraries")
    loaded = load_on_device(catalog_spec("whisper-tiny.en"), DeviceDecision("cuda", "forced"), 2, build_engine)
    assert loaded.device == "cpu" and "libcublas.so.12" in loaded.note and "fell back to CPU" in loaded.note
    assert loaded.engine.compute_type == "int8"


@pytest.mark.real_model
def test_real_llama_forced_onto_cuda_by_a_cpu_build_says_it_runs_on_the_cpu():
    from inference.device import PROBES
    from inference.pool import build_engine
    from tests.inference.conftest import catalog_spec

    offloads, why = PROBES["llama"]()
    if offloads:
        pytest.skip("this llama.cpp build offloads to a GPU")
    loaded = load_on_device(catalog_spec("smollm2-135m-instruct"), DeviceDecision("cuda", "forced"), 2, build_engine)
    assert loaded.device == "cpu" and loaded.note == f"{why}; running on CPU"
