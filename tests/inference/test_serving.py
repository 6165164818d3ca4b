"""The model worker: one thread, one lock, a bounded FIFO queue, cancellation."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from inference.fake import FakeTextEngine
from inference.serving import LoadedEngine, ModelWorker
from inference.types import ChatMessage, ModelLoadError, QueueFullError, SamplingParams


class Gate:
    """An engine stand-in whose jobs block until released, to hold the worker busy."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.active = 0
        self.max_active = 0
        self.order: list[str] = []


def blocking(name: str) -> Any:
    def fn(gate: Gate, stop: threading.Event) -> Iterator[str]:
        gate.active += 1
        gate.max_active = max(gate.max_active, gate.active)
        gate.started.set()
        gate.release.wait(5)
        gate.order.append(name)
        gate.active -= 1
        yield name

    return fn


def wait_started(worker: ModelWorker) -> Gate:
    for _ in range(500):
        if worker.engine is not None and worker.engine.started.is_set():
            return worker.engine
        threading.Event().wait(0.01)
    raise AssertionError("the first job never started")


def make_worker(engine: Any = None, max_queue: int = 100) -> ModelWorker:
    return ModelWorker("m", lambda: LoadedEngine(engine if engine is not None else Gate(), "cpu"), max_queue=max_queue)


def test_jobs_run_one_at_a_time_in_submission_order():
    worker = make_worker()
    jobs = [worker.submit(blocking(f"j{i}")) for i in range(5)]
    gate = wait_started(worker)  # the first job holds the worker; the rest wait in order
    assert [j.position() for j in jobs[1:]] == [1, 2, 3, 4]
    gate.release.set()
    assert [j.result() for j in jobs] == [["j0"], ["j1"], ["j2"], ["j3"], ["j4"]]
    assert gate.order == ["j0", "j1", "j2", "j3", "j4"]
    assert gate.max_active == 1


def test_interactive_jobs_go_ahead_of_background_jobs():
    worker = make_worker()
    worker.submit(blocking("running"))
    gate = wait_started(worker)
    bulk = [worker.submit(blocking(f"bulk{i}"), background=True) for i in range(2)]
    chat = worker.submit(blocking("chat"))
    later_bulk = worker.submit(blocking("bulk2"), background=True)
    api = worker.submit(blocking("api"))
    assert [chat.position(), api.position()] == [1, 2]
    assert [b.position() for b in [*bulk, later_bulk]] == [3, 4, 5]
    gate.release.set()
    later_bulk.result()
    assert gate.order == ["running", "chat", "api", "bulk0", "bulk1", "bulk2"]


def test_full_queue_is_refused_with_a_clear_error():
    worker = make_worker(max_queue=2)
    first = worker.submit(blocking("running"))
    wait_started(worker)
    worker.submit(blocking("w1"))
    worker.submit(blocking("w2"))
    with pytest.raises(QueueFullError, match="2 requests waiting"):
        worker.submit(blocking("w3"))
    worker.engine.release.set()
    assert first.result() == ["running"]


def test_cancelled_waiting_job_never_runs():
    worker = make_worker()
    first = worker.submit(blocking("first"))
    waiting = worker.submit(blocking("never"))
    waiting.cancel()
    assert waiting.result() == []
    wait_started(worker).release.set()
    first.result()
    follow_up = worker.submit(blocking("after"))
    assert follow_up.result() == ["after"]
    assert worker.engine.order == ["first", "after"]


def test_consumer_that_stops_early_stops_the_engine():
    engine = FakeTextEngine(delay=0.01)
    worker = make_worker(engine)
    messages = [ChatMessage("user", "hi")]
    job = worker.submit(lambda e, stop: e.chat(messages, SamplingParams(max_tokens=100), stop))
    for chunk in job:
        assert chunk.text
        break  # the client went away
    assert job.cancelled
    # The worker is free again: the next job runs to completion.
    done = worker.submit(lambda e, stop: e.chat(messages, SamplingParams(max_tokens=3, seed=1), stop)).result()
    assert done[-1].finish_reason == "length"


def test_cancel_mid_stream_finishes_with_cancelled():
    engine = FakeTextEngine(delay=0.02)
    worker = make_worker(engine)
    job = worker.submit(lambda e, stop: e.chat([ChatMessage("user", "x")], SamplingParams(max_tokens=100), stop))
    finished, first = job.get(timeout=5)
    assert not finished and first.text
    job.stop_event.set()  # what cancel() does, but keep reading
    rest = []
    while True:
        finished, item = job.get(timeout=5)
        if finished:
            break
        rest.append(item)
    assert rest[-1].finish_reason == "cancelled"
    assert rest[-1].usage.completion_tokens <= 3


def test_engine_errors_reach_the_caller():
    worker = make_worker(FakeTextEngine())

    def boom(engine: Any, stop: threading.Event) -> Iterator[str]:
        raise ValueError("bad thing")
        yield  # pragma: no cover

    with pytest.raises(ValueError, match="bad thing"):
        worker.submit(boom).result()


def test_model_loads_lazily_and_a_failed_load_is_reported():
    calls = []

    def loader() -> LoadedEngine:
        calls.append(1)
        raise FileNotFoundError("weights gone")

    worker = ModelWorker("broken", loader)
    assert worker.state == "not_loaded" and calls == []
    with pytest.raises(ModelLoadError, match="weights gone"):
        worker.submit(lambda e, stop: iter([1])).result()
    assert worker.state == "failed" and "weights gone" in worker.error


async def test_jobs_can_be_iterated_from_asyncio():
    worker = make_worker(FakeTextEngine())
    job = worker.submit(lambda e, stop: e.chat([ChatMessage("user", "hello")], SamplingParams(seed=3), stop))
    chunks = [chunk async for chunk in job]
    assert "".join(c.text for c in chunks).startswith("You said: hello")
    assert chunks[-1].finish_reason == "stop"


async def test_cancelling_the_async_consumer_stops_the_engine():
    worker = make_worker(FakeTextEngine(delay=0.05))
    job = worker.submit(lambda e, stop: e.chat([ChatMessage("user", "x")], SamplingParams(max_tokens=100), stop))

    async def consume() -> None:
        async for _chunk in job:
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert job.cancelled


async def test_a_wait_past_the_time_limit_raises_after_what_was_already_there_and_stops_the_engine():
    worker = make_worker(FakeTextEngine(delay=0.05))
    job = worker.submit(lambda e, stop: e.chat([ChatMessage("user", "x")], SamplingParams(max_tokens=100), stop))
    loop = asyncio.get_running_loop()
    items = job.items(until=loop.time() + 0.3)
    first = await anext(items)  # within the limit
    await asyncio.sleep(0.5)  # the limit passes while the consumer is busy; the engine goes on meanwhile
    got = [first]
    with pytest.raises(TimeoutError):
        while True:
            got.append(await anext(items))
    assert 2 <= len(got) < 100  # the chunks made before the limit came first, then the wait for more timed out
    assert got[-1].finish_reason is None and job.cancelled
    assert not [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]  # no timer left


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="nice values are a POSIX feature")
def test_the_engine_thread_runs_at_the_configured_nice_value_and_the_caller_is_untouched():
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def niceness(_engine: Any, _stop: threading.Event) -> Iterator[int]:
        yield os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    niced = ModelWorker("m", lambda: LoadedEngine(Gate(), "cpu"), nice=5)
    assert niced.submit(niceness).result() == [min(base + 5, 19)]
    plain = ModelWorker("m", lambda: LoadedEngine(Gate(), "cpu"))
    assert plain.submit(niceness).result() == [base]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base


# -- the fake text engine: why it stopped ---------------------------------------------------------------------------


def fake_reply(**params: Any) -> tuple[str, Any]:
    chunks = list(FakeTextEngine().chat([ChatMessage("user", "hello")], SamplingParams(seed=3, **params)))
    return "".join(c.text for c in chunks), chunks[-1]


def test_fake_engine_names_the_earliest_stop_sequence_that_ended_the_reply():
    text, last = fake_reply(stop=("hello", "said"))  # "You said: hello ...": "said" comes first in the text
    assert (text, last.finish_reason, last.stop_sequence) == ("You ", "stop", "said")


def test_fake_engine_end_of_text_and_max_tokens_name_no_stop_sequence():
    full, last = fake_reply()
    assert (last.finish_reason, last.stop_sequence) == ("stop", None)
    text, last = fake_reply(stop=("zebra",))
    assert (text, last.finish_reason, last.stop_sequence) == (full, "stop", None)
    text, last = fake_reply(max_tokens=2, stop=("zebra",))
    assert (text, last.finish_reason, last.stop_sequence) == ("You said:", "length", None)
    # A stop sequence that starts with the reply's last word holds it back; the end of text lets it out.
    text, last = fake_reply(stop=(full.split()[-1] + "!",))
    assert (text, last.finish_reason, last.stop_sequence) == (full, "stop", None)


# -- owners: the pool passes who is asking (the fair turns themselves: tests/inference/test_fairness.py) ----------


def test_the_pool_queues_a_job_for_its_owner_and_applies_the_owners_waiting_cap():
    from inference.serving import Owner
    from inference.types import RateLimitedError
    from tests.conftest import make_fake_pool

    pool = make_fake_pool()
    release, started = threading.Event(), threading.Event()

    def held(_engine: Any, _stop: threading.Event) -> Iterator[str]:
        started.set()
        release.wait(5)
        yield "held"

    first = pool.submit("fake-chat", held)
    assert started.wait(5)
    owner = Owner("A", "token 1", max_waiting=1)
    mine = pool.submit("fake-chat", lambda e, stop: iter(["mine"]), owner=owner)
    assert mine.owner == owner and mine.position() == 1
    with pytest.raises(RateLimitedError, match="at most 1 per user") as refused:
        pool.submit("fake-chat", lambda e, stop: iter(["more"]), owner=Owner("A", "token 2", max_waiting=1))
    assert refused.value.retry_after >= 1
    bulk = pool.submit("fake-chat", lambda e, stop: iter(["bulk"]), background=True, owner=owner)
    assert pool.workers["fake-chat"].waiting == 2 and bulk.position() == 2
    release.set()
    assert [first.result(), mine.result(), bulk.result()] == [["held"], ["mine"], ["bulk"]]


# -- constrained decoding on the fake engine: a fixed reply the lead's API tests can rely on -----------------------


def test_fake_engine_answers_a_grammar_with_its_fixed_json_and_records_the_grammar():
    engine = FakeTextEngine()
    params = SamplingParams(seed=3, grammar='root ::= "{}"')
    chunks = list(engine.chat([ChatMessage("user", "hello")], params))
    assert "".join(c.text for c in chunks) == '{"answer": "fake"}'
    assert [c.text for c in chunks[:-1]] == ['{"answer":', ' "fake"}']
    assert (chunks[-1].finish_reason, chunks[-1].usage.completion_tokens) == ("stop", 2)
    assert engine.calls[-1]["grammar"] == 'root ::= "{}"'
    list(engine.complete("a prompt", params))
    assert engine.calls[-1]["kind"] == "complete" and engine.calls[-1]["grammar"] == 'root ::= "{}"'
    list(engine.chat([ChatMessage("user", "hello")], SamplingParams(seed=3)))
    assert engine.calls[-1]["grammar"] is None


def test_fake_engine_grammar_reply_is_settable_exact_and_cut_by_max_tokens():
    reply = '{\n  "city": "Paris",\n  "days": 3\n}'
    engine = FakeTextEngine(grammar_reply=reply)
    chunks = list(engine.chat([ChatMessage("user", "hi")], SamplingParams(grammar="root ::= object")))
    assert "".join(c.text for c in chunks) == reply  # whitespace kept as given
    cut = list(engine.chat([ChatMessage("user", "hi")], SamplingParams(max_tokens=2, grammar="root ::= object")))
    assert "".join(c.text for c in cut) == '{\n  "city":'
    assert (cut[-1].finish_reason, cut[-1].usage.completion_tokens) == ("length", 2)


class Told:
    """An observer that notes when it is told that the job is done."""

    def __init__(self) -> None:
        self.told = threading.Event()

    def start(self) -> None:
        pass

    def item(self, item: Any) -> bool:
        return item == "last"

    def done(self, *, cancelled: bool, error: BaseException | None) -> None:
        self.told.set()


def test_the_observer_hears_a_replys_end_before_the_consumer_gets_its_last_item():
    """So a client holding the whole reply (a non-streamed answer, a stream's last event) finds it accounted for."""
    worker = make_worker(Gate())
    told = Told()
    consumer_has_the_end = threading.Event()

    def fn(gate: Gate, stop: threading.Event) -> Iterator[str]:
        yield "first"
        yield "last"
        consumer_has_the_end.wait(5)  # what an engine does after its last item is no longer the reply

    items = []
    for item in worker.submit(fn, told):
        items.append(item)
        if item == "last":
            assert told.told.is_set()
            consumer_has_the_end.set()
    assert items == ["first", "last"]
