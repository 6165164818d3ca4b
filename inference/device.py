"""Decide, per engine family, whether models run on CUDA or on the CPU, and say why.

Each family asks its own library: llama.cpp whether it was built with GPU offload and sees a GPU device,
CTranslate2 (faster-whisper) whether it sees a CUDA device and can load the CUDA 12 cuBLAS it needs,
onnxruntime (Piper) whether it has a CUDA execution provider. A broken install of one library therefore
never moves another family to the CPU. Loading a model then runs a tiny real inference on the chosen
device (inference/probe.py); a model that fails there falls back to the CPU with the reason on its card.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

logger = logging.getLogger(__name__)

Device = Literal["cpu", "cuda"]
REQUESTS = ("auto", "cpu", "cuda")
FAMILIES = ("llama", "whisper", "piper")  # the engine names of inference/catalog.py, less "fake"
LABELS = {"llama": "llama.cpp", "whisper": "faster-whisper", "piper": "Piper"}


@dataclass(frozen=True)
class DeviceDecision:
    """Where one engine family runs; the site-wide decision holds one per family in `engines`."""

    device: Device
    reason: str
    requested: str = "auto"
    engines: Mapping[str, DeviceDecision] = field(default_factory=lambda: MappingProxyType({}))

    def for_engine(self, engine: str) -> DeviceDecision:
        """The decision for one engine family (fake engines, and a decision made by hand, use the whole)."""
        return self.engines.get(engine, self)


# The reasons below are shown to users (the catalog, each card, /health), so they say what it means in plain
# words; which library said what goes to the server log.
NO_GPU = "no GPU was found"
CHECK_FAILED = "the GPU could not be checked (details in the server log)"


def _llama_probe() -> tuple[bool, str]:
    try:
        import llama_cpp
        from llama_cpp._ggml import libggml

        if not llama_cpp.llama_supports_gpu_offload():
            logger.info("llama.cpp was built without GPU offload")
            return False, "the text engine was installed without GPU support"
        by_type = libggml.ggml_backend_dev_by_type
        by_type.argtypes, by_type.restype = [ctypes.c_int], ctypes.c_void_p
        if not by_type(1):  # GGML_BACKEND_DEVICE_TYPE_GPU
            logger.info("llama.cpp was built with GPU offload but sees no GPU")
            return False, NO_GPU
    except Exception as exc:  # a broken install must not stop the site
        logger.warning("llama.cpp could not be queried for a GPU: %s", exc)
        return False, CHECK_FAILED
    return True, "a GPU was found"


def _whisper_probe() -> tuple[bool, str]:
    try:
        import ctranslate2

        count = ctranslate2.get_cuda_device_count()
    except Exception as exc:
        logger.warning("CTranslate2 could not query CUDA: %s", exc)
        return False, CHECK_FAILED
    if count < 1:
        logger.info("no CUDA device visible to CTranslate2")
        return False, NO_GPU
    from inference.speech import load_cuda_libraries

    missing = load_cuda_libraries()
    if missing:
        logger.warning("%s CUDA device(s), but CTranslate2's CUDA 12 libraries are missing: %s", count, missing)
        return False, "a GPU was found, but the CUDA 12 libraries speech recognition needs are not installed"
    return True, "a GPU was found" if count == 1 else f"{count} GPUs were found"


def _piper_probe() -> tuple[bool, str]:
    try:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
    except Exception as exc:
        logger.warning("onnxruntime could not be queried for CUDA: %s", exc)
        return False, CHECK_FAILED
    if "CUDAExecutionProvider" not in providers:
        logger.info("onnxruntime has no CUDA provider (the onnxruntime package is the CPU build)")
        return False, "the voice engine was installed without GPU support"
    return True, "a GPU was found"


PROBES: dict[str, Callable[[], tuple[bool, str]]] = {
    "llama": _llama_probe,
    "whisper": _whisper_probe,
    "piper": _piper_probe,
}


def _decide_family(family: str, requested: str) -> DeviceDecision:
    if requested == "cpu":
        return DeviceDecision("cpu", "CPU forced by configuration (device=cpu)", requested)
    usable, why = PROBES[family]()
    if usable:
        return DeviceDecision("cuda", why, requested)
    if requested == "cuda":
        # Honour the operator's choice; each model falls back to CPU on load and says so.
        return DeviceDecision("cuda", f"CUDA forced by configuration, although {why}", requested)
    return DeviceDecision("cpu", f"CPU because {why}", requested)


def decide_device(requested: str = "auto") -> DeviceDecision:
    requested = (requested or "auto").strip().lower()
    if requested not in REQUESTS:
        raise ValueError(f"device must be one of {', '.join(REQUESTS)}, not {requested!r}")
    families = {family: _decide_family(family, requested) for family in FAMILIES}
    on_gpu = [family for family, decision in families.items() if decision.device == "cuda"]
    reasons = {each.reason for each in families.values()}
    if len(reasons) == 1:
        reason = reasons.pop()
    elif not on_gpu and any(each.reason == f"CPU because {NO_GPU}" for each in families.values()):
        reason = f"CPU because {NO_GPU}"  # the one reason that matters: how each engine was installed does not
    elif not on_gpu:  # each family's reason names its engine
        reason = "; ".join(each.reason.removeprefix("CPU because ") for each in families.values())
    else:
        reason = "; ".join(
            f"{LABELS[f]} on {d.device.upper()}: {d.reason.removeprefix('CPU because ')}" for f, d in families.items()
        )
    decision = DeviceDecision("cuda" if on_gpu else "cpu", reason, requested, MappingProxyType(families))
    for family, each in families.items():
        logger.info("inference device for %s: %s (%s)", family, each.device, each.reason)
    return decision
