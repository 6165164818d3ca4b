"""One worker thread, one lock and one bounded FIFO queue per loaded model.

A llama.cpp context must never be used from two threads at once (it crashes
the whole process), so every call into an engine runs on its model's own
worker thread while holding that model's lock. Callers get a ``Job``: an
iterator (sync or async) over what the engine yields, a queue position while
waiting, and ``cancel()``, which sets the stop flag the engine checks on every
token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from inference.protocols import Engine
from inference.types import ModelLoadError, QueueFullError

logger = logging.getLogger(__name__)

T = TypeVar("T")
# What a job runs: fn(engine, stop_event). The engine is Any here because one worker serves every kind of model;
# callers name the protocol their model's task gives (EnginePool.submit checks that it is an engine protocol).
JobFn = Callable[[Any, threading.Event], Iterator[T]]
LoadState = Literal["not_loaded", "loading", "loaded", "failed"]

_ITEM, _ERROR, _END = "item", "error", "end"


@dataclass(frozen=True)
class LoadedEngine:
    engine: Engine
    device: str
    note: str = ""  # e.g. why a model fell back to the CPU


class JobObserver(Protocol):
    """Told, on the worker thread, about every item a started job yields and how it ended.

    Accounting hangs here: it sees the engine's own final usage even when the consumer has
    gone away (a closed socket, a timeout), so a reply cut short is still counted once.
    """

    def start(self) -> None: ...

    def item(self, item: Any) -> None: ...

    def done(self, *, cancelled: bool, error: BaseException | None) -> None: ...


class Job[T]:
    """A request queued on a model worker. Iterate it to receive what the engine yields."""

    def __init__(
        self, worker: ModelWorker, fn: JobFn[T], observer: JobObserver | None = None, *, background: bool = False
    ) -> None:
        self.worker = worker
        self.fn = fn
        self.observer = observer
        self.background = background
        self.stop_event = threading.Event()
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None
        self._items: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._waker: Callable[[], object] | None = None

    # -- called on the worker thread --
    def _put(self, kind: str, value: Any = None) -> None:
        self._items.put((kind, value))
        waker = self._waker
        if waker is not None:
            try:
                waker()
            except RuntimeError:  # the consumer's event loop has closed; nobody is listening
                self._waker = None

    # -- called by the consumer --
    @property
    def cancelled(self) -> bool:
        return self.stop_event.is_set()

    def cancel(self) -> None:
        """Stop the engine within one token; a job still waiting never starts."""
        self.stop_event.set()
        self.worker._discard(self)

    def position(self) -> int:
        """0 while running (or finished), n while n-th in the waiting line."""
        return self.worker.position(self)

    def _unpack(self, kind: str, value: Any) -> tuple[bool, Any]:
        if kind == _ERROR:
            raise value
        return kind == _END, value

    def get(self, timeout: float | None = None) -> tuple[bool, Any]:
        """Next (finished, item); raises queue.Empty after `timeout` seconds with nothing new."""
        kind, value = self._items.get(timeout=timeout)
        return self._unpack(kind, value)

    def __iter__(self) -> Iterator[T]:
        try:
            while True:
                finished, value = self.get()
                if finished:
                    return
                yield value
        finally:
            self.cancel()  # a consumer that stops early stops the engine too

    async def __aiter__(self) -> AsyncIterator[T]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        self._waker = lambda: loop.call_soon_threadsafe(wake.set)
        try:
            while True:
                try:
                    kind, value = self._items.get_nowait()
                except queue.Empty:
                    await wake.wait()
                    wake.clear()  # re-check the queue after clearing: no lost wake-ups
                    continue
                finished, value = self._unpack(kind, value)
                if finished:
                    return
                yield value
        finally:
            self._waker = None
            self.cancel()

    def result(self) -> list[T]:
        return list(self)


class ModelWorker:
    """All work on one model: a bounded waiting line (interactive before bulk) and one worker thread
    holding the engine's lock, or, for a batching engine, as many worker threads as it has slots."""

    def __init__(
        self,
        model_id: str,
        loader: Callable[[], LoadedEngine],
        *,
        max_queue: int = 100,
        nice: int = 0,
        concurrency: int = 1,
    ) -> None:
        self.model_id = model_id
        self.max_queue = max_queue
        self.nice = nice
        # concurrency 1: the engine (and its KV cache) belongs to one caller at a time. More: a batching
        # engine that interleaves that many requests itself (inference/batching.py).
        self.concurrency = max(1, concurrency)
        self.lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.state: LoadState = "not_loaded"
        self.error = ""
        self.device = ""
        self.note = ""
        self.engine: Engine | None = None
        self._loader = loader
        self._pending: deque[Job[Any]] = deque()
        self._running: set[Job[Any]] = set()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []

    def submit(self, fn: JobFn[T], observer: JobObserver | None = None, *, background: bool = False) -> Job[T]:
        """Queue a job. Interactive jobs wait in order, ahead of every background (bulk) job."""
        job: Job[T] = Job(self, fn, observer, background=background)
        with self._cond:
            if len(self._pending) >= self.max_queue:
                raise QueueFullError(
                    f"model {self.model_id} has {len(self._pending)} requests waiting "
                    f"(limit {self.max_queue}); retry later"
                )
            if background:
                self._pending.append(job)
            else:
                first_background = next((i for i, j in enumerate(self._pending) if j.background), len(self._pending))
                self._pending.insert(first_background, job)
            if len(self._threads) < min(self.concurrency, len(self._running) + len(self._pending)):
                thread = threading.Thread(
                    target=self._run, name=f"model-{self.model_id}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._cond.notify()
        return job

    def position(self, job: Job[Any]) -> int:
        with self._cond:
            try:
                return self._pending.index(job) + 1
            except ValueError:
                return 0

    @property
    def waiting(self) -> int:
        return len(self._pending)

    @property
    def busy(self) -> bool:
        return bool(self._running)

    @property
    def running(self) -> int:
        """Requests running now: up to the engine's batch slots."""
        return len(self._running)

    def _discard(self, job: Job[Any]) -> None:
        with self._cond:
            try:
                self._pending.remove(job)
            except ValueError:
                return
        job._put(_END)

    def load(self) -> Engine:
        """Load the engine if needed (once, whichever worker thread asks first)."""
        if self.state == "loaded" and self.engine is not None:
            return self.engine
        with self._load_lock:
            if self.state == "loaded" and self.engine is not None:
                return self.engine
            return self._load()

    def _load(self) -> Engine:
        self.state = "loading"
        started = time.monotonic()
        try:
            loaded = self._loader()
        except Exception as exc:
            self.state, self.error = "failed", str(exc)
            logger.exception("model %s failed to load", self.model_id)
            raise ModelLoadError(f"model {self.model_id} could not be loaded: {exc}") from exc
        self.engine, self.device, self.note = loaded.engine, loaded.device, loaded.note
        self.state, self.error = "loaded", ""
        logger.info(
            "model %s loaded on %s in %.1fs%s",
            self.model_id,
            self.device,
            time.monotonic() - started,
            f" ({self.note})" if self.note else "",
        )
        return loaded.engine

    def _run(self) -> None:
        if self.nice and sys.platform == "linux":
            # Lower this thread's CPU priority; the engine's compute threads are created from it and
            # inherit it. An idle web server costs inference nothing, but a page request that needs a
            # core gets it at once instead of waiting behind the engine's busy threads.
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except OSError:
                pass
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                job = self._pending.popleft()
                self._running.add(job)
            job.started_at = time.monotonic()
            started = False
            error: BaseException | None = None
            try:
                with self.lock if self.concurrency == 1 else contextlib.nullcontext():
                    engine = self.load()
                    if job.observer is not None:
                        job.observer.start()  # the engine takes the request now: time to first token counts from here
                    items = job.fn(engine, job.stop_event)  # a refusal (bad request) raises here
                    started = True
                    for item in items:
                        if job.observer is not None:
                            job.observer.item(item)
                        job._put(_ITEM, item)
            except Exception as exc:
                error = exc
            # Tell the observer before the consumer hears the end: once a reply is over, its account is written.
            if started and job.observer is not None:
                try:
                    job.observer.done(cancelled=job.stop_event.is_set(), error=error)
                except Exception:  # accounting must never take the worker down
                    logger.exception("job observer failed for model %s", self.model_id)
            with self._cond:
                self._running.discard(job)
            job._put(_ERROR, error) if error is not None else job._put(_END)
