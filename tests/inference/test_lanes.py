"""The lanes every CPU llama.cpp decode runs on (inference/lanes.py): one lane while one call runs at a time, a lane
more for each call that finds them all busy, extra lanes ending when idle; and the real engines decode there."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import llama_cpp
import pytest

from inference.batching import BatchedTextEngine
from inference.lanes import LANES, Lanes
from inference.types import ChatMessage, SamplingParams
from tests.inference.conftest import GPU, THREADS, catalog_spec


def thread_name() -> str:
    return threading.current_thread().name


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_calls_from_any_thread_run_one_after_another_on_lane_0():
    lanes = Lanes(shared=True)
    names: list[str] = []
    callers = [threading.Thread(target=lambda: names.append(lanes.run(thread_name))) for _ in range(4)]
    for caller in callers:
        caller.start()
        caller.join()
    assert names == ["llama-lane-0"] * 4
    assert len(lanes.lanes) == 1


def test_a_result_and_an_error_reach_the_caller():
    lanes = Lanes(shared=True)
    assert lanes.run(divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        lanes.run(divmod, 1, 0)
    assert lanes.run(divmod, 9, 4) == (2, 1)  # the lane lives on


def test_a_call_that_finds_every_lane_busy_gets_a_new_one_which_ends_when_idle():
    lanes = Lanes(linger=0.05, shared=True)
    release = threading.Event()
    started = threading.Event()

    def hold() -> str:
        started.set()
        release.wait(10)
        return thread_name()

    held: list[str] = []
    holder = threading.Thread(target=lambda: held.append(lanes.run(hold)))
    holder.start()
    assert started.wait(10)
    assert lanes.run(thread_name) == "llama-lane-1"  # lane 0 is busy
    release.set()
    holder.join()
    assert held == ["llama-lane-0"]
    wait_for(lambda: len(lanes.lanes) == 1)
    assert lanes.run(thread_name) == "llama-lane-0"  # lane 0 stays
    assert not any(t.name == "llama-lane-1" and t.is_alive() for t in threading.enumerate())


def test_until_shared_a_call_runs_on_the_callers_thread():
    lanes = Lanes()
    assert lanes.run(thread_name) == thread_name()
    assert lanes.lanes == []
    lanes.share()
    assert lanes.run(thread_name) == "llama-lane-0"


@pytest.mark.real_model
@pytest.mark.skipif(GPU, reason="on the GPU a context decodes on the caller's thread")
def test_both_text_engines_decode_on_the_lanes_whatever_thread_asks(monkeypatch):
    monkeypatch.setattr(LANES, "shared", True)
    spec = catalog_spec("smollm2-135m-instruct")
    batched = BatchedTextEngine(path=spec.path, n_ctx=512, threads=THREADS, slots=2)
    decoded_on: list[str] = []
    real_decode = llama_cpp.llama_cpp.llama_decode

    def recording(*args: object) -> int:
        decoded_on.append(thread_name())
        return real_decode(*args)

    monkeypatch.setattr(llama_cpp.llama_cpp, "llama_decode", recording)  # what llama-cpp-python's Llama calls
    monkeypatch.setattr(llama_cpp, "llama_decode", recording)  # what the batched engine calls
    params = SamplingParams(temperature=0.0, max_tokens=4)
    worker = threading.Thread(target=lambda: list(batched.chat([ChatMessage("user", "Hi")], params)))
    worker.start()
    worker.join()
    serialized = threading.Thread(target=lambda: list(batched.llm.create_completion("Hello", max_tokens=2)))
    serialized.start()  # the Llama object's own context, as the serialized engine and embeddings use it
    serialized.join()
    assert decoded_on and all(name.startswith("llama-lane-") for name in decoded_on), decoded_on
    assert LANES.lanes[0].thread.name == "llama-lane-0"
