"""The engine pool: every catalog model, loaded lazily, each behind its own worker."""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.catalog import ModelSpec
from inference.device import PROBES, DeviceDecision
from inference.lanes import LANES
from inference.probe import warm_up
from inference.protocols import Engine
from inference.serving import Job, JobObserver, LoadedEngine, ModelWorker, Owner
from inference.types import InvalidRequestError

if TYPE_CHECKING:
    from inference.remote import Router

logger = logging.getLogger(__name__)

EngineFactory = Callable[..., Engine]  # (spec, gpu, threads, slots=0) -> engine


class UnknownModelError(InvalidRequestError):
    code = "model_not_found"


def kv_bytes_per_token(path: Path) -> int | None:
    """The KV cache one token takes in a llama.cpp context (every layer's keys and values, f16), from the GGUF
    file's header; None when it cannot be read."""
    try:
        from gguf import GGUFReader

        fields = GGUFReader(str(path)).fields

        def value(key: str) -> Any:
            field = fields.get(key)
            if field is None:
                return None
            content = field.contents()
            return max(content) if isinstance(content, list) else content  # per-layer values: the largest

        arch = value("general.architecture")
        layers, heads, embedding = (
            value(f"{arch}.{k}") for k in ("block_count", "attention.head_count", "embedding_length")
        )
        kv_heads = value(f"{arch}.attention.head_count_kv") or heads
        key = value(f"{arch}.attention.key_length") or embedding // heads
        return int(layers * kv_heads * (key + (value(f"{arch}.attention.value_length") or key)) * 2)
    except Exception:  # no file, not a GGUF, a header without these keys
        return None


def batch_slots_for(
    spec: ModelSpec,
    batch_slots: int,
    kv_budget_bytes: int,
    token_bytes: Callable[[Path], int | None] = kv_bytes_per_token,
) -> int:
    """How many requests of a model decode together (0: one at a time).

    Each request may use the model's whole served context (n_ctx) in cells of its own, so that its numbers do
    not depend on its neighbours (a seed reproduces beside other requests); the slots are as many as
    `batch_slots` allows and their KV cache fits `kv_budget_bytes` (measured: SmolLM2 22.5 KB per token,
    184 MB for one 8,192-token slot). Other models, and a budget for fewer than two slots, are served one
    request at a time, with the same whole context."""
    if batch_slots < 2 or spec.engine != "llama" or spec.task not in ("text-to-text", "text-completion"):
        return 0
    per_token = token_bytes(spec.path)
    if not per_token or not spec.n_ctx:
        return 0
    slots = min(batch_slots, kv_budget_bytes // (spec.n_ctx * per_token))
    return slots if slots >= 2 else 0


def build_remote(spec: ModelSpec, router: Router) -> Engine:
    """The engine of a model served by other servers (inference/remote.py), over its router."""
    from inference import remote

    options = spec.options
    if spec.task in ("text-to-text", "text-completion", "embeddings"):
        counter = remote.Counter(remote.Tokenizer(spec.tokenizer) if spec.tokenizer else None)
        if spec.task == "embeddings":
            return remote.RemoteEmbeddingEngine(
                router, n_ctx=spec.n_ctx, dimensions=int(options.get("dimensions", 0)), counter=counter
            )
        kind: remote.Kind = "tgi" if spec.engine == "tgi" else "openai"
        return remote.RemoteTextEngine(
            router, kind=kind, n_ctx=spec.n_ctx, chat=spec.task == "text-to-text", counter=counter
        )
    if spec.task == "speech-to-text":
        multilingual = bool(options.get("multilingual", "translate" in spec.capabilities))
        return remote.RemoteSpeechToTextEngine(router, multilingual=multilingual)
    return remote.RemoteTextToSpeechEngine(
        router,
        voice=str(options.get("voice", "default")),
        max_characters=int(options.get("max_characters", 4096)),
        sample_rate=int(options.get("sample_rate", 22050)),
    )


def router_for(spec: ModelSpec) -> Router:
    from inference.remote import Router

    return Router(
        spec.id,
        spec.upstreams,
        read_timeout=float(spec.options.get("timeout", 60)),
        health_path="/health" if spec.engine == "tgi" else "/models",
    )


def build_engine(spec: ModelSpec, gpu: bool, threads: int, slots: int = 0, prefix_cache: bool = True) -> Engine:
    """Construct the real engine for a catalog entry (imports its library here, not at import time).

    A llama text model with `slots` > 1 gets the batching engine: that many requests decode together."""
    if spec.engine == "fake":
        from inference import fake

        fakes: dict[str, Callable[[], Engine]] = {
            "text-to-text": lambda: fake.FakeTextEngine(n_ctx=spec.n_ctx or 2048),
            "text-completion": lambda: fake.FakeTextEngine(n_ctx=spec.n_ctx or 2048, chat=False),
            "embeddings": fake.FakeEmbeddingEngine,
            "speech-to-text": fake.FakeSpeechToTextEngine,
            "text-to-speech": fake.FakeTextToSpeechEngine,
        }
        return fakes[spec.task]()
    if spec.task in ("text-to-text", "text-completion") and slots > 1:
        from inference.batching import BatchedTextEngine

        # each request may use the whole n_ctx; the requests share a cache of that many cells (see `batched`)
        return BatchedTextEngine(
            path=spec.path,
            n_ctx=spec.n_ctx,
            threads=threads,
            slots=slots,
            gpu=gpu,
            prefix_cache=prefix_cache,
            **spec.options,
        )
    if spec.task in ("text-to-text", "text-completion"):
        from inference.text import LlamaTextEngine

        return LlamaTextEngine(path=spec.path, n_ctx=spec.n_ctx, threads=threads, gpu=gpu, **spec.options)
    if spec.task == "embeddings":
        from inference.text import LlamaEmbeddingEngine

        return LlamaEmbeddingEngine(path=spec.path, n_ctx=spec.n_ctx or 512, threads=threads, gpu=gpu)
    if spec.task == "speech-to-text":
        from inference.speech import WhisperEngine

        return WhisperEngine(path=spec.path, threads=threads, gpu=gpu, **spec.options)
    from inference.speech import PiperEngine

    return PiperEngine(path=spec.path, gpu=gpu, **spec.options)


# The decoding scheme's version, in every system_fingerprint: change it when a change alters replies (v2: seeded
# requests decode in batches of their own).
REPRODUCIBILITY = "v2"
LIBRARIES = {"llama": "llama_cpp_python", "whisper": "faster-whisper", "piper": "piper-tts"}


@functools.cache
def _library(engine: str) -> str:
    """The engine library's version and, for llama.cpp, the build the set-up proved (its record)."""
    from importlib import metadata

    from inference.buildcheck import RECORD_NAME

    try:
        version = metadata.version(LIBRARIES[engine]) if engine in LIBRARIES else engine
    except metadata.PackageNotFoundError:
        version = "absent"
    record = Path(sys.prefix) / RECORD_NAME
    build = record.read_text() if engine == "llama" and record.is_file() else ""
    return f"{version} {build}"


def _file_identity(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (str(path), 0, 0)
    return (str(path), stat.st_size, stat.st_mtime_ns)


def load_remote(spec: ModelSpec, router: Router) -> LoadedEngine:
    """A remote model "loads" by starting its upstreams' health checks (and reading its tokenizer, if any)."""
    router.start()
    return LoadedEngine(build_remote(spec, router), "remote")


def load_on_device(
    spec: ModelSpec,
    device: DeviceDecision,
    threads: int,
    factory: EngineFactory,
    slots: int = 0,
    prefix_cache: bool = True,
) -> LoadedEngine:
    """Load on the model's family's device and prove it with a tiny real inference there.

    A model that fails to load or to run on the GPU falls back to the CPU and says why; one that fails
    on the CPU fails to load (the error reaches the card and /health).
    """
    extra: dict[str, Any] = {"slots": slots} if slots > 1 else {}
    if slots > 1 and not prefix_cache:
        extra["prefix_cache"] = False
    if spec.engine == "fake":  # nothing to prove (and their call logs are the tests' to read)
        return LoadedEngine(factory(spec, False, threads, **extra), "cpu")
    if device.for_engine(spec.engine).device == "cpu":
        return LoadedEngine(_proven(factory(spec, False, threads, **extra), spec, "cpu"), "cpu")
    try:
        engine = _proven(factory(spec, True, threads, **extra), spec, "cuda")
    except Exception as exc:
        logger.warning("model %s failed on CUDA (%s); falling back to CPU", spec.id, exc)
        fallback = _proven(factory(spec, False, threads, **extra), spec, "cpu")
        return LoadedEngine(fallback, "cpu", f"failed on CUDA ({exc}); fell back to CPU")
    if spec.engine == "llama":
        offloads, why = PROBES["llama"]()
        if not offloads:  # forced to CUDA, but llama.cpp keeps every layer on the CPU
            return LoadedEngine(engine, "cpu", f"{why}; running on CPU")
    return LoadedEngine(engine, "cuda")


def _proven(engine: Engine, spec: ModelSpec, device: str) -> Engine:
    logger.info("model %s warm-up on %s: %s", spec.id, device, warm_up(engine, spec.task))
    return engine


@dataclass(frozen=True)
class ModelStatus:
    id: str
    task: str
    state: str
    device: str
    note: str  # why a loaded model runs on the CPU although its engine family was given the GPU
    device_reason: str  # why it runs on its device: the fallback note, else its engine family's decision
    error: str
    waiting: int
    weights_present: bool
    upstreams: list[dict[str, Any]]  # a remote model's servers: state, in flight, latency (inference/remote.py)


class EnginePool:
    def __init__(
        self,
        specs: Iterable[ModelSpec],
        *,
        device: DeviceDecision,
        threads: int,
        max_queue: int = 100,
        factory: EngineFactory = build_engine,
        nice: int = 0,
        batch_slots: int = 0,
        batch_kv_bytes: int = 1024 * 2**20,
        prefix_cache: bool = True,
    ) -> None:
        self.device = device
        self.specs = {spec.id: spec for spec in specs}
        if sum(spec.engine == "llama" for spec in self.specs.values()) > 1:
            LANES.share()  # their CPU decodes share a few threads, or libgomp would slow them all (inference/lanes.py)
        self.workers = {}
        self.routers: dict[str, Router] = {}  # remote models' (their health checks start with the first load)
        for spec in self.specs.values():
            if spec.remote:
                router = self.routers[spec.id] = router_for(spec)
                self.workers[spec.id] = ModelWorker(
                    spec.id,
                    partial(load_remote, spec, router),
                    max_queue=max_queue,
                    nice=nice,
                    concurrency=router.capacity,  # as many requests at once as its servers take
                )
                continue
            slots = batch_slots_for(spec, batch_slots, batch_kv_bytes)
            self.workers[spec.id] = ModelWorker(
                spec.id,
                partial(load_on_device, spec, device, threads, factory, slots, prefix_cache),
                max_queue=max_queue,
                nice=nice,
                concurrency=max(1, slots),
            )

    def spec(self, model_id: str) -> ModelSpec:
        try:
            return self.specs[model_id]
        except KeyError:
            raise UnknownModelError(f"the model {model_id!r} does not exist") from None

    def worker(self, model_id: str) -> ModelWorker:
        self.spec(model_id)
        return self.workers[model_id]

    def submit[E: Engine, T](
        self,
        model_id: str,
        fn: Callable[[E, threading.Event], Iterator[T]],
        observer: JobObserver | None = None,
        *,
        background: bool = False,
        owner: Owner | None = None,
    ) -> Job[T]:
        """Run ``fn(engine, stop_event)`` (returning an iterator) on the model's worker thread.

        `fn` names the engine protocol it needs (TextEngine, ...); the model's task decides which one the
        worker holds. Background (bulk) jobs yield to interactive ones: they wait behind every interactive request.
        `owner` is who asks: the model's users take turns, and its caps apply (None: an operator's job, uncapped).
        """
        return self.worker(model_id).submit(fn, observer, background=background, owner=owner)

    def call[E: Engine, T](self, model_id: str, fn: Callable[[E], T], observer: JobObserver | None = None) -> T:
        """Run a one-shot ``fn(engine)`` on the model's worker and wait for its result."""

        def once(engine: E, _stop: threading.Event) -> Iterator[T]:
            return iter((fn(engine),))  # fn runs here, so a refusal raises before the job counts as started

        (result,) = self.submit(model_id, once, observer).result()
        return result

    def warm(self, model_ids: Iterable[str] | None = None) -> list[Job[None]]:
        """Queue a load of each model (all by default); returns jobs to wait on if wanted."""

        def noop(engine: Engine, _stop: threading.Event) -> Iterator[None]:
            yield from ()

        ids = list(model_ids) if model_ids is not None else [s.id for s in self.specs.values() if s.weights_present]
        return [self.submit(model_id, noop) for model_id in ids]

    def fingerprint(self, model_id: str) -> str:
        """The model's system_fingerprint: it changes when what decides its numbers changes (the engine library's
        version and build, the weights file, the device it runs on, the decoding scheme); for a remote model, its
        upstreams. A seeded request's reply is reproducible while it stays the same (inference/batching.py)."""
        spec, worker = self.spec(model_id), self.workers[model_id]
        parts: list[object] = [REPRODUCIBILITY, spec.engine, spec.n_ctx, worker.device or self.device.device]
        if spec.remote:
            parts += [(u.url, u.model) for u in spec.upstreams]
        else:
            parts += [_library(spec.engine), _file_identity(spec.path)]
        return "fp_" + hashlib.sha256(repr(parts).encode()).hexdigest()[:12]

    def status(self) -> list[ModelStatus]:
        statuses = []
        for spec in self.specs.values():
            worker, family = self.workers[spec.id], self.device.for_engine(spec.engine)
            statuses.append(
                ModelStatus(
                    id=spec.id,
                    task=spec.task,
                    state=worker.state,
                    device="remote" if spec.remote else worker.device or family.device,
                    note=worker.note,
                    device_reason=worker.note
                    or (f"served by {len(spec.upstreams)} upstream server(s)" if spec.remote else family.reason),
                    error=worker.error,
                    waiting=worker.waiting,
                    weights_present=spec.weights_present,
                    upstreams=self.routers[spec.id].status() if spec.id in self.routers else [],
                )
            )
        return statuses
