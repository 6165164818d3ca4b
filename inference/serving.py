"""One worker thread, one lock and one bounded, fair waiting line per loaded model.

A llama.cpp context must never be used from two threads at once (it crashes
the whole process), so every call into an engine runs on its model's own
worker thread while holding that model's lock. Callers get a ``Job``: an
iterator (sync or async) over what the engine yields, a queue position while
waiting, and ``cancel()``, which sets the stop flag the engine checks on every
token.

The waiting line is fair between the people sharing a model: a free slot goes to
the user served least recently among those waiting (a newcomer first), within a
user to the token served least recently, and within a token to its oldest job.
However many requests one user has waiting, another's waits at most one turn of
each other waiting user. Interactive jobs go before every background (bulk) job;
bulk jobs take turns among their users the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import queue
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from inference.protocols import Engine
from inference.types import ModelLoadError, QueueFullError, RateLimitedError

logger = logging.getLogger(__name__)

T = TypeVar("T")
# What a job runs: fn(engine, stop_event). The engine is Any here because one worker serves every kind of model;
# callers name the protocol their model's task gives (EnginePool.submit checks that it is an engine protocol).
JobFn = Callable[[Any, threading.Event], Iterator[T]]
LoadState = Literal["not_loaded", "loading", "loaded", "failed"]

_ITEM, _ERROR, _END = "item", "error", "end"
_OPERATOR = object()  # the user key of jobs without an owner (operator tools, warm-up): one more user, uncapped
# What one job is assumed to take before this model has finished any (retry_after's estimate); then a running mean.
FIRST_JOB_SECONDS = 5.0
RETRY_AFTER_MAX = 60  # seconds


@dataclass(frozen=True)
class Owner:
    """Who a job is for. The waiting line takes users in turn, and each user's tokens in turn.

    The caps are per user on one model and travel with the owner, so the site reads them from its settings
    when the request comes (and could set them per token): `max_waiting` jobs waiting per tier (one more is
    refused with RateLimitedError; None: no cap), `max_running` jobs running while another user's job waits
    (None: half the model's slots, at least 1).
    """

    user: Hashable
    token: Hashable = None
    max_waiting: int | None = None
    max_running: int | None = None


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

    def item(self, item: Any) -> bool:
        """Take one item; True when it is the reply's last (the observer is then told `done` before the
        consumer gets it, so a client that has the whole reply finds it accounted for)."""
        ...

    def done(self, *, cancelled: bool, error: BaseException | None) -> None: ...


class Job[T]:
    """A request queued on a model worker. Iterate it to receive what the engine yields."""

    def __init__(
        self,
        worker: ModelWorker,
        fn: JobFn[T],
        observer: JobObserver | None = None,
        *,
        background: bool = False,
        owner: Owner | None = None,
    ) -> None:
        self.worker = worker
        self.fn = fn
        self.observer = observer
        self.background = background
        self.owner = owner
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
        """0 while running (or finished), n while n-th in the order the waiting line will serve (see
        ModelWorker.position)."""
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

    def __aiter__(self) -> AsyncIterator[T]:
        return self.items()

    async def items(self, *, until: float | None = None) -> AsyncIterator[T]:
        """What the engine yields, on the event loop. With `until` (the loop's clock), a wait for the next item past
        it raises TimeoutError (what is already here is still given): one timer for the whole job, where a timeout
        around each item would arm and cancel one per token."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            wake.set()

        self._waker = lambda: loop.call_soon_threadsafe(wake.set)
        timer = loop.call_at(until, expire) if until is not None else None
        try:
            while True:
                try:
                    kind, value = self._items.get_nowait()
                except queue.Empty:
                    if expired:
                        raise TimeoutError from None
                    await wake.wait()
                    wake.clear()  # re-check the queue after clearing: no lost wake-ups
                    continue
                finished, value = self._unpack(kind, value)
                if finished:
                    return
                yield value
        finally:
            if timer is not None:
                timer.cancel()
            self._waker = None
            self.cancel()

    def result(self) -> list[T]:
        return list(self)


def _keys(owner: Owner | None) -> tuple[Hashable, Hashable]:
    return (_OPERATOR, None) if owner is None else (owner.user, owner.token)


class Running:
    """Jobs running on one worker, counted per user and per (user, token); only keys with some are kept."""

    def __init__(self) -> None:
        self.users: dict[Hashable, int] = {}
        self.tokens: dict[tuple[Hashable, Hashable], int] = {}

    def count(self, job: Job[Any], change: int) -> None:
        user, token = _keys(job.owner)
        _add(self.users, user, change)
        _add(self.tokens, (user, token), change)


def _add[K](counts: dict[K, int], key: K, change: int) -> None:
    counts[key] = counts.get(key, 0) + change
    if not counts[key]:
        del counts[key]


class _Turns[K: Hashable]:
    """Whose turn comes next: keys never served yet, in arrival order, then the key served least recently."""

    def __init__(self) -> None:
        self.fresh: dict[K, None] = {}
        self.served: OrderedDict[K, None] = OrderedDict()

    def __iter__(self) -> Iterator[K]:
        yield from self.fresh
        yield from self.served

    def __contains__(self, key: K) -> bool:
        return key in self.fresh or key in self.served

    def add(self, key: K) -> None:
        if key not in self:
            self.fresh[key] = None

    def leave(self, key: K) -> None:
        """`key` has nothing waiting any more. One never served is forgotten; one served keeps its place."""
        self.fresh.pop(key, None)

    def serve(self, key: K, *, idle: Callable[[K], bool]) -> list[K]:
        """`key` just had a job started: it goes to the back. Returns the keys forgotten: those at the front
        with nothing waiting or running. They were served before every key still remembered, so if they come
        back they go ahead of those, as least-recently-served would put them (but in arrival order among the
        newcomers, whom it would put first). No key passes a waiting one twice, so nobody starves; and memory
        is kept to the keys waiting or running, and those served since the longest-waiting one."""
        self.fresh.pop(key, None)
        self.served[key] = None
        self.served.move_to_end(key)
        forgotten = []
        while self.served:
            front = next(iter(self.served))
            if front == key or not idle(front):  # `key`'s job is not counted as running yet
                break
            del self.served[front]
            forgotten.append(front)
        return forgotten


class _Line:
    """One tier's waiting jobs: users in turn, each user's tokens in turn, each token's jobs in order."""

    def __init__(self, running: Running) -> None:
        self.running = running  # the worker's, both tiers
        self.users: _Turns[Hashable] = _Turns()
        self.tokens: dict[Hashable, _Turns[Hashable]] = {}  # per user
        self.jobs: dict[tuple[Hashable, Hashable], deque[Job[Any]]] = {}  # per (user, token)
        self.per_user: dict[Hashable, int] = {}  # jobs waiting, per user with any
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, job: Job[Any]) -> None:
        user, token = _keys(job.owner)
        self.users.add(user)
        self.tokens.setdefault(user, _Turns()).add(token)
        self.jobs.setdefault((user, token), deque()).append(job)
        _add(self.per_user, user, +1)
        self.size += 1

    def _count_out(self, user: Hashable, token: Hashable) -> None:
        """One job of (user, token) has left its line: keep the counts (and only lines with jobs)."""
        self.size -= 1
        _add(self.per_user, user, -1)
        if not self.jobs[(user, token)]:
            del self.jobs[(user, token)]

    def remove(self, job: Job[Any]) -> bool:
        """Take a cancelled job out of the line; a user or token that never had a turn is forgotten with it."""
        user, token = _keys(job.owner)
        line = self.jobs.get((user, token))
        if line is None or job not in line:
            return False
        line.remove(job)
        self._count_out(user, token)
        if (user, token) not in self.jobs:
            self.tokens[user].leave(token)
        if user not in self.per_user:
            self.users.leave(user)
            if user not in self.users:  # never served: nothing of theirs to remember
                del self.tokens[user]
        return True

    def heads(self) -> list[Job[Any]]:
        """Each waiting user's next job, in the order their turns come."""
        heads = []
        for user in self.users:
            if user in self.per_user:
                token = next(t for t in self.tokens[user] if (user, t) in self.jobs)
                heads.append(self.jobs[(user, token)][0])
        return heads

    def take(self, job: Job[Any]) -> None:
        """Start `job` (one of `heads()`): its token and its user go to the back of their turns."""
        user, token = _keys(job.owner)
        assert self.jobs[(user, token)][0] is job
        self.jobs[(user, token)].popleft()
        self._count_out(user, token)
        running = self.running
        self.tokens[user].serve(token, idle=lambda t: (user, t) not in self.jobs and (user, t) not in running.tokens)
        for gone in self.users.serve(user, idle=lambda u: u not in self.per_user and u not in running.users):
            self.tokens.pop(gone, None)

    def ahead(self, job: Job[Any]) -> int | None:
        """How many jobs of this tier start before `job` if nothing else arrives (None: not waiting here).

        The turns go round in a fixed order: `job`, the i-th of its token's line, is its user's k-th job, where k
        counts the user's tokens' jobs in the rounds before and the tokens ahead in its round; then every other
        user starts up to k jobs before it, one more if their turn comes first."""
        user, token = _keys(job.owner)
        line = self.jobs.get((user, token))
        if line is None or job not in line:
            return None
        i = line.index(job)
        k, first = 0, True
        for t in self.tokens[user]:
            n = len(self.jobs.get((user, t), ()))
            if t == token:
                k, first = k + i, False
            else:
                k += min(n, i) + (first and n > i)
        ahead, first = 0, True
        for u in self.users:
            n = self.per_user.get(u, 0)
            if u == user:
                ahead, first = ahead + k, False
            else:
                ahead += min(n, k) + (first and n > k)
        return ahead


class ModelWorker:
    """All work on one model: a bounded, fair waiting line (interactive before bulk, users in turn within each)
    and one worker thread holding the engine's lock, or, for a batching engine, as many worker threads as it has
    slots."""

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
        self._running: set[Job[Any]] = set()
        self._running_by = Running()
        self._lines = (_Line(self._running_by), _Line(self._running_by))  # interactive, background: in that order
        self._job_seconds = FIRST_JOB_SECONDS  # a running mean of how long jobs take here (for retry_after)
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []

    def submit(
        self,
        fn: JobFn[T],
        observer: JobObserver | None = None,
        *,
        background: bool = False,
        owner: Owner | None = None,
    ) -> Job[T]:
        """Queue a job for `owner` (None: an operator's, uncapped). Interactive jobs wait ahead of every
        background (bulk) job; within each, users take turns. Raises RateLimitedError when the owner's user
        already has `owner.max_waiting` jobs waiting in that tier, QueueFullError when the line is full."""
        job: Job[T] = Job(self, fn, observer, background=background, owner=owner)
        with self._cond:
            line = self._lines[background]
            if owner is not None and owner.max_waiting is not None:
                # Jobs about to take a free slot (a burst not yet picked up by the worker threads) do not count
                # as waiting: the cap gives the same answer however quickly the threads take them.
                free = max(0, self.concurrency - len(self._running))
                mine = line.per_user.get(owner.user, 0) - free
                if mine >= owner.max_waiting:
                    retry_after = self._retry_after(line)
                    raise RateLimitedError(
                        f"you have {mine} requests waiting for model {self.model_id} (at most "
                        f"{owner.max_waiting} per user); retry after {retry_after} s",
                        retry_after=retry_after,
                    )
            if self.waiting >= self.max_queue:
                raise QueueFullError(
                    f"model {self.model_id} has {self.waiting} requests waiting (limit {self.max_queue}); retry later"
                )
            line.add(job)
            if len(self._threads) < min(self.concurrency, len(self._running) + self.waiting):
                thread = threading.Thread(
                    target=self._run, name=f"model-{self.model_id}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._cond.notify()
        return job

    def position(self, job: Job[Any]) -> int:
        """0 while running (or finished); n when n-1 jobs start before it if nobody else comes: the turns of
        the users and tokens waiting, interactive first. (The running cap may let another user's job pass.)"""
        with self._cond:
            ahead = self._lines[job.background].ahead(job)
            if ahead is None:
                return 0
            return ahead + 1 + (len(self._lines[0]) if job.background else 0)

    @property
    def waiting(self) -> int:
        return len(self._lines[0]) + len(self._lines[1])

    def _retry_after(self, line: _Line) -> int:
        """Seconds until a user's next waiting job likely starts: one round of the users waiting in `line`."""
        seconds = self._job_seconds * max(1, len(line.per_user)) / self.concurrency
        return min(RETRY_AFTER_MAX, max(1, math.ceil(seconds)))

    def _may_run(self, job: Job[Any]) -> bool:
        owner = job.owner
        if owner is None:
            return True
        cap = owner.max_running if owner.max_running is not None else max(1, self.concurrency // 2)
        return self._running_by.users.get(owner.user, 0) < cap

    def _next(self) -> Job[Any]:
        """Take the job whose turn it is (called with the condition held and a job waiting).

        The first tier with a job waiting is served. In it, the first user in turn who is under the running cap;
        if every waiting user is at it, the first in turn anyway: a free slot never stays idle while jobs wait,
        so a user alone may use every slot, and the cap only shares them when others wait."""
        line = self._lines[0] if self._lines[0] else self._lines[1]
        heads = line.heads()
        job = next((j for j in heads if self._may_run(j)), heads[0])
        line.take(job)
        return job

    @property
    def busy(self) -> bool:
        return bool(self._running)

    @property
    def running(self) -> int:
        """Requests running now: up to the engine's batch slots."""
        return len(self._running)

    def _discard(self, job: Job[Any]) -> None:
        with self._cond:
            if not self._lines[job.background].remove(job):
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

    def _tell(self, job: Job[Any], error: BaseException | None) -> None:
        if job.observer is not None:
            try:
                job.observer.done(cancelled=job.stop_event.is_set(), error=error)
            except Exception:  # accounting must never take the worker down
                logger.exception("job observer failed for model %s", self.model_id)

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
                while not self.waiting:
                    self._cond.wait()
                job = self._next()
                self._running.add(job)
                self._running_by.count(job, +1)
            job.started_at = time.monotonic()
            started = told = False
            error: BaseException | None = None
            try:
                with self.lock if self.concurrency == 1 else contextlib.nullcontext():
                    engine = self.load()
                    if job.observer is not None:
                        job.observer.start()  # the engine takes the request now: time to first token counts from here
                    items = job.fn(engine, job.stop_event)  # a refusal (bad request) raises here
                    started = True
                    for item in items:
                        if job.observer is not None and job.observer.item(item) and not told:
                            self._tell(job, None)
                            told = True
                        job._put(_ITEM, item)
            except Exception as exc:
                error = exc
            # Tell the observer before the consumer hears the end: once a reply is over, its account is written.
            if started and not told:
                self._tell(job, error)
            with self._cond:
                self._running.discard(job)
                self._running_by.count(job, -1)
                # a slowly moving mean: one long reply or a quick refusal barely moves it
                self._job_seconds += (time.monotonic() - job.started_at - self._job_seconds) / 10
            job._put(_ERROR, error) if error is not None else job._put(_END)
