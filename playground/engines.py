"""The one place the site gets engines from: builds the pool from settings and caches it."""

from __future__ import annotations

import os
import threading

from django.conf import settings

from inference import DeviceDecision, EnginePool, ModelSpec, decide_device, load_catalog
from inference.buildcheck import recorded_env

_lock = threading.Lock()
_pool: EnginePool | None = None


def catalog_specs() -> list[ModelSpec]:
    """The catalog's models this process offers: every remote one, and the in-process ones PLAYGROUND_SERVE_MODELS
    names (all when it is unset)."""
    specs = load_catalog(list(settings.PLAYGROUND_CATALOG_FILES), models_dir=settings.PLAYGROUND_MODELS_DIR)
    serve = settings.PLAYGROUND_SERVE_MODELS
    return [spec for spec in specs if serve is None or spec.remote or spec.id in serve]


def get_pool() -> EnginePool:
    """The process-wide pool; the device is decided once, on first use."""
    global _pool
    with _lock:
        if _pool is None:
            # Run-time caps the set-up's proof found this machine needs (none on most); before any engine loads.
            for name, value in recorded_env().items():
                os.environ.setdefault(name, value)
            _pool = EnginePool(
                catalog_specs(),
                device=decide_device(settings.PLAYGROUND_DEVICE),
                threads=settings.PLAYGROUND_THREADS,
                max_queue=settings.PLAYGROUND_MAX_QUEUE,
                nice=settings.PLAYGROUND_ENGINE_NICE,
                batch_slots=settings.PLAYGROUND_BATCH_SLOTS,
                batch_kv_bytes=settings.PLAYGROUND_BATCH_KV_MB * 2**20,
                prefix_cache=settings.PLAYGROUND_PREFIX_CACHE,
            )
        return _pool


def set_pool(pool: EnginePool | None) -> None:
    """Install a pool (tests install one of fake engines); None rebuilds from settings on next use."""
    global _pool
    with _lock:
        _pool = pool


def device_decision() -> DeviceDecision:
    return get_pool().device
