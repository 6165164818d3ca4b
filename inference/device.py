"""Decide once whether models run on CUDA or on the CPU, and say why."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

Device = Literal["cpu", "cuda"]
REQUESTS = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DeviceDecision:
    device: Device
    reason: str
    requested: str = "auto"


def _cuda_probe() -> tuple[bool, str]:
    """Ask the libraries (not the driver files) whether a GPU is usable."""
    try:
        import ctranslate2

        count = ctranslate2.get_cuda_device_count()
    except Exception as exc:  # a broken CUDA install must not stop the site
        return False, f"ctranslate2 could not query CUDA ({exc})"
    if count < 1:
        return False, "no CUDA device visible to ctranslate2"
    try:
        import llama_cpp

        offload = bool(llama_cpp.llama_supports_gpu_offload())
    except Exception as exc:
        return False, f"llama.cpp could not be queried ({exc})"
    if not offload:
        return False, f"{count} CUDA device(s) present but llama.cpp was built without GPU offload"
    return True, f"{count} CUDA device(s) visible and llama.cpp built with GPU offload"


def decide_device(requested: str = "auto") -> DeviceDecision:
    requested = (requested or "auto").strip().lower()
    if requested not in REQUESTS:
        raise ValueError(f"device must be one of {', '.join(REQUESTS)}, not {requested!r}")
    if requested == "cpu":
        decision = DeviceDecision("cpu", "CPU forced by configuration (device=cpu)", requested)
    else:
        usable, why = _cuda_probe()
        if usable:
            decision = DeviceDecision("cuda", why, requested)
        elif requested == "cuda":
            # Honour the operator's choice; each model falls back to CPU on load and says so.
            decision = DeviceDecision("cuda", f"CUDA forced by configuration, although {why}", requested)
        else:
            decision = DeviceDecision("cpu", f"CPU because {why}", requested)
    logger.info("inference device: %s (%s)", decision.device, decision.reason)
    return decision
