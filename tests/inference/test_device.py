"""The device decision and the per-model fallback to CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference import device as device_module
from inference.catalog import ModelSpec
from inference.device import DeviceDecision, decide_device
from inference.pool import load_on_device

SPEC = ModelSpec(id="m", name="m", task="speech-to-text", engine="whisper", path=Path("/x"))


def test_cpu_can_be_forced():
    decision = decide_device("cpu")
    assert decision.device == "cpu" and "forced" in decision.reason


def test_auto_uses_cuda_only_when_the_libraries_report_a_gpu(monkeypatch):
    monkeypatch.setattr(device_module, "_cuda_probe", lambda: (False, "no CUDA device visible to ctranslate2"))
    decision = decide_device("auto")
    assert decision.device == "cpu" and "no CUDA device" in decision.reason
    monkeypatch.setattr(device_module, "_cuda_probe", lambda: (True, "1 CUDA device(s) visible"))
    assert decide_device("AUTO").device == "cuda"


def test_real_probe_on_this_machine_gives_a_reason():
    decision = decide_device("auto")
    assert decision.device in ("cpu", "cuda") and decision.reason


def test_unknown_override_is_refused():
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        decide_device("tpu")


def test_model_that_fails_on_the_gpu_falls_back_to_cpu_and_says_so():
    def factory(spec: ModelSpec, gpu: bool, threads: int) -> str:
        if gpu:
            raise RuntimeError("CUDA out of memory")
        return "cpu-engine"

    loaded = load_on_device(SPEC, DeviceDecision("cuda", "test"), 1, factory)
    assert loaded.engine == "cpu-engine" and loaded.device == "cpu"
    assert "CUDA out of memory" in loaded.note and "fell back to CPU" in loaded.note


def test_model_on_cpu_decision_never_tries_the_gpu():
    seen = []
    loaded = load_on_device(SPEC, DeviceDecision("cpu", "test"), 1, lambda s, gpu, t: seen.append(gpu) or "e")
    assert seen == [False] and loaded.device == "cpu" and loaded.note == ""
