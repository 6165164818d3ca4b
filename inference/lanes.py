"""Where llama.cpp computes on the CPU: a few long-lived threads (lanes) that every model of the process shares.

llama.cpp's CPU backend runs each decode as a GNU OpenMP parallel region, and libgomp keeps a team of threads for
every thread that has started one. Once a process holds more such threads than it has cores, libgomp stops spinning
at its barriers and sleeps on a futex instead, and a decode crosses hundreds of barriers. Each model's worker thread
used to decode itself, so on 2 cores a second model that had only proved itself at load (and sat idle) made SmolLM2's
replies about a third slower (bench/neighbours.py, docs/benchmarks.md).

So in a process that holds two llama.cpp models or more on the CPU (the pool says so: `share()`), every CPU decode
runs on a lane: the first idle one, lane 0 first, so that one model decoding alone always uses the same OpenMP team
and spins. Only when every lane is busy (two models decoding at the same moment) does a new lane start; the models
then share the cores as threads do, and libgomp sleeping at barriers is right for that. A lane other than lane 0
ends after LINGER seconds without work, and with it its OpenMP team, so the model left decoding alone spins again. A
process with one such model (an engine node, a benchmark) decodes on the caller's thread: a hand-off costs a few
hundred microseconds a step on a small CPU (bench/scheduler.py's `rest`), and one model's worker keeps one OpenMP
team anyway.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

LINGER = 2.0  # seconds an extra lane waits for work before it ends


class _Call:
    __slots__ = ("args", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Lane:
    def __init__(self, lanes: Lanes, number: int) -> None:
        self.lanes = lanes
        self.number = number
        self.busy = False
        self.calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name=f"llama-lane-{number}", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                call = self.calls.get(timeout=None if self.number == 0 else self.lanes.linger)
            except queue.Empty:
                with self.lanes.lock:
                    if self.busy:  # handed a call just as the wait ended: it is in the queue
                        continue
                    self.lanes.lanes.remove(self)
                return
            try:
                call.result = call.fn(*call.args)
            except BaseException as exc:  # the caller's to handle
                call.error = exc
            with self.lanes.lock:
                self.busy = False
            call.done.set()


class Lanes:
    def __init__(self, linger: float = LINGER, *, shared: bool = False) -> None:
        self.linger = linger
        self.shared = shared
        self.lock = threading.Lock()
        self.lanes: list[_Lane] = []
        self._started = 0

    def share(self) -> None:
        """From now on, decode on the lanes (once shared, always: a model's worker that decoded would keep its team)."""
        self.shared = True

    def run[T](self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on the first idle lane (a new one if all are busy), or here until shared; returns or raises as
        fn does."""
        if not self.shared:
            return fn(*args)
        with self.lock:
            lane = next((lane for lane in self.lanes if not lane.busy), None)
            if lane is None:
                lane = _Lane(self, self._started)
                self._started += 1
                self.lanes.append(lane)
            lane.busy = True
        call = _Call(fn, args)
        lane.calls.put(call)
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result


LANES = Lanes()  # the process's: every CPU llama.cpp context decodes here


def _here[T](fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)


def runner(gpu: bool) -> Callable[..., Any]:
    """How a context's decodes run: on a lane on the CPU; on the GPU on the caller's thread (its CPU threads barely
    compute there, and a hand-off per step would cost a GPU's short steps more than it saves)."""
    return _here if gpu else LANES.run
