"""Fair turns on a model's waiting line: users in turn (tokens in turn within a user), interactive before bulk,
per-user caps on waiting and running jobs.

Every test holds the worker with jobs that wait on an Event and releases them when it chooses, so the order of
events is fixed by the test, never by the clock (a wait's timeout only ends a hung test).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from inference.serving import FIRST_JOB_SECONDS, Job, LoadedEngine, ModelWorker, Owner
from inference.types import QueueFullError, RateLimitedError

HUNG = 10  # seconds: only a broken scheduler waits this long


class Log:
    """The order in which jobs started, and each job's release switch."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.events: dict[str, threading.Event] = {}
        self.release_all = threading.Event()

    def job(self, name: str, *, hold: bool = False, then: Any = None) -> Any:
        """A job that records its start, runs `then()` (e.g. submits a follow-up), and, when held, waits for
        `release(name)`."""
        started = self.events.setdefault(f"{name}:started", threading.Event())
        release = self.events.setdefault(name, threading.Event())

        def fn(_engine: Any, _stop: threading.Event) -> Iterator[str]:
            self.started.append(name)
            if then is not None:
                then()
            started.set()
            if hold:
                release.wait(HUNG)
            yield name

        return fn

    def wait_started(self, name: str) -> None:
        assert self.events[f"{name}:started"].wait(HUNG), f"{name} never started; started: {self.started}"

    def release(self, name: str) -> None:
        self.events[name].set()


def worker(concurrency: int = 1, max_queue: int = 100) -> ModelWorker:
    return ModelWorker("m", lambda: LoadedEngine(object(), "cpu"), max_queue=max_queue, concurrency=concurrency)  # type: ignore[arg-type]


def hold(w: ModelWorker, log: Log, name: str = "hold") -> Job[str]:
    """An operator's job that holds the (first) slot until released."""
    job = w.submit(log.job(name, hold=True))
    log.wait_started(name)
    return job


def user(name: str, token: str | None = None, **caps: Any) -> Owner:
    return Owner(user=name, token=token, **caps)


def finish(jobs: list[Job[str]]) -> None:
    for job in jobs:
        job.result()


def test_a_newcomer_is_served_at_the_next_free_slot_however_many_another_has_waiting():
    w, log = worker(), Log()
    first = w.submit(log.job("a0", hold=True), owner=user("A"))
    log.wait_started("a0")
    flood = [w.submit(log.job(f"a{i}"), owner=user("A")) for i in range(1, 11)]
    b = w.submit(log.job("b"), owner=user("B"))
    assert b.position() == 1  # first come, first served put it 11th
    assert [j.position() for j in flood] == list(range(2, 12))
    log.release("a0")
    finish([first, *flood, b])
    assert log.started[:3] == ["a0", "b", "a1"]


def test_users_take_turns_and_so_do_a_users_tokens_and_positions_say_so():
    w, log = worker(), Log()
    held = hold(w, log)
    submitted = [
        ("a1", user("A", "t1")),
        ("a2", user("A", "t1")),
        ("a3", user("A", "t1")),
        ("b1", user("B")),
        ("a4", user("A", "t2")),
        ("c1", user("C")),
        ("b2", user("B")),
    ]
    jobs = {name: w.submit(log.job(name), owner=owner) for name, owner in submitted}
    fair = ["a1", "b1", "c1", "a4", "b2", "a2", "a3"]  # A's second token gets A's second turn
    assert {name: job.position() for name, job in jobs.items()} == {name: i + 1 for i, name in enumerate(fair)}
    assert w.waiting == 7
    log.release("hold")
    finish([held, *jobs.values()])
    assert log.started == ["hold", *fair]


def test_bulk_of_two_users_alternates_and_waits_behind_interactive():
    w, log = worker(), Log()
    held = hold(w, log)
    bulk = [w.submit(log.job(f"{u}{i}"), owner=user(u), background=True) for u in "ab" for i in (1, 2, 3)]
    chat = w.submit(log.job("chat"), owner=user("c"))
    fair = ["chat", "a1", "b1", "a2", "b2", "a3", "b3"]
    jobs = {"chat": chat, **{name: j for name, j in zip(["a1", "a2", "a3", "b1", "b2", "b3"], bulk, strict=True)}}
    assert {name: job.position() for name, job in jobs.items()} == {name: i + 1 for i, name in enumerate(fair)}
    log.release("hold")
    finish([held, chat, *bulk])
    assert log.started == ["hold", *fair]


def test_nothing_starves_one_request_among_many_users_is_served_within_one_round():
    w, log = worker(), Log()
    held = hold(w, log)
    jobs = [w.submit(log.job(f"flood{i}"), owner=user("F")) for i in range(12)]
    for u in range(5):
        jobs.append(w.submit(log.job(f"u{u}"), owner=user(f"U{u}")))
    log.release("hold")
    finish([held, *jobs])
    first_round = log.started[1:7]  # hold, then one turn each for the 6 users waiting
    assert sorted(first_round) == ["flood0", "u0", "u1", "u2", "u3", "u4"]


def test_users_who_always_have_the_next_request_ready_do_not_starve_one_served_before_them():
    # B and C queue their next request while the last one runs (a client with no think time); A was served
    # before them and has one more waiting. Its turn comes right after theirs, not after all of theirs.
    w, log = worker(), Log()
    held = hold(w, log)
    jobs: list[Job[str]] = []

    def chain(u: str, n: int) -> Any:
        def then() -> None:
            if n < 4:
                jobs.append(w.submit(log.job(f"{u}{n + 1}", then=chain(u, n + 1)), owner=user(u)))

        return then

    jobs += [w.submit(log.job(f"a{i}"), owner=user("A")) for i in (1, 2)]
    jobs += [w.submit(log.job(f"{u}1", then=chain(u, 1)), owner=user(u)) for u in "bc"]
    log.release("hold")
    held.result()
    read = 0
    while read < len(jobs):  # a follow-up is queued before the job that queues it ends
        jobs[read].result()
        read += 1
    assert log.started == ["hold", "a1", "b1", "c1", "a2", "b2", "c2", "b3", "c3", "b4", "c4"]


def test_a_user_over_the_waiting_cap_is_refused_with_retry_after_and_others_are_not():
    w, log = worker(), Log()
    held = hold(w, log)
    capped = [w.submit(log.job(f"a{i}"), owner=user("A", max_waiting=2)) for i in (1, 2)]
    other_token = user("A", "second token", max_waiting=2)  # the cap is per user, whichever token asks
    with pytest.raises(RateLimitedError) as refused:
        w.submit(log.job("a3"), owner=other_token)
    assert refused.value.code == "rate_limit_exceeded"
    assert isinstance(refused.value, QueueFullError)  # the bulk worker waits and retries on these
    assert "2 requests waiting" in str(refused.value)
    assert refused.value.retry_after == math.ceil(FIRST_JOB_SECONDS)  # one round: A alone waits
    b = w.submit(log.job("b1"), owner=user("B", max_waiting=2))
    c = w.submit(log.job("c1"), owner=user("C", max_waiting=2))
    with pytest.raises(RateLimitedError) as refused:
        w.submit(log.job("a3"), owner=user("A", max_waiting=2))
    assert refused.value.retry_after == math.ceil(3 * FIRST_JOB_SECONDS)  # a round of A, B and C
    bulk = w.submit(log.job("a-bulk"), owner=user("A", max_waiting=2), background=True)  # bulk has its own count
    capped[0].cancel()  # room again
    again = w.submit(log.job("a4"), owner=user("A", max_waiting=2))
    log.release("hold")
    finish([held, *capped, b, c, bulk, again])
    assert "a3" not in log.started and "a1" not in log.started
    assert w.waiting == 0


def test_the_line_bound_still_holds_for_everyone():
    w, log = worker(max_queue=2), Log()
    held = hold(w, log)
    jobs = [w.submit(log.job(f"{u}"), owner=user(u)) for u in "ab"]
    with pytest.raises(QueueFullError) as refused:
        w.submit(log.job("c"), owner=user("c"))
    assert not isinstance(refused.value, RateLimitedError)
    log.release("hold")
    finish([held, *jobs])


def test_a_user_at_the_running_cap_lets_another_users_waiting_job_take_the_free_slot():
    w, log = worker(concurrency=4), Log()  # the default cap: half the slots, 2
    names = [("a1", "A"), ("a2", "A"), ("c1", "C")]
    running = []
    for name, u in names:  # one at a time, so A is served before C
        running.append(w.submit(log.job(name, hold=True), owner=user(u)))
        log.wait_started(name)
    running.append(hold(w, log, "op"))  # the fourth slot
    a3 = w.submit(log.job("a3", hold=True), owner=user("A"))  # A's turn comes first (served before C) ...
    c2 = w.submit(log.job("c2", hold=True), owner=user("C"))
    assert (a3.position(), c2.position()) == (1, 2)
    log.release("op")
    log.wait_started("c2")  # ... but A holds 2 of the 4 slots while C waits: C's job takes the free one
    assert log.started == ["a1", "a2", "c1", "op", "c2"]
    log.release("a1")
    log.wait_started("a3")
    for name in ("a2", "c1", "c2", "a3"):
        log.release(name)
    finish([*running, a3, c2])


def test_a_user_alone_may_use_every_slot():
    w, log = worker(concurrency=4), Log()
    jobs = [w.submit(log.job(f"a{i}", hold=True), owner=user("A")) for i in range(4)]
    for i in range(4):
        log.wait_started(f"a{i}")  # nobody else waits: the running cap (2) does not leave slots idle
    assert w.running == 4
    for i in range(4):
        log.release(f"a{i}")
    finish(jobs)


def test_a_cancelled_newcomer_leaves_no_trace_and_positions_close_up():
    w, log = worker(), Log()
    held = hold(w, log)
    a = [w.submit(log.job(f"a{i}"), owner=user("A")) for i in (1, 2)]
    b = w.submit(log.job("b1"), owner=user("B"))
    assert [a[0].position(), b.position(), a[1].position()] == [1, 2, 3]
    b.cancel()
    assert [a[0].position(), a[1].position(), b.position()] == [1, 2, 0]
    assert w.waiting == 2
    log.release("hold")
    finish([held, *a])
    assert log.started == ["hold", "a1", "a2"]


# -- who is asking: the site passes its caller and its settings' caps ------------------------------------------------


@pytest.mark.django_db
def test_the_site_queues_each_request_as_its_callers_user_and_token_with_the_settings_caps(
    fake_pool, user, other_user, settings
):
    from inference import SamplingParams
    from playground.contract.errors import problem
    from playground.serving import text_stream
    from playground.usage.services import Caller, metered_as

    settings.PLAYGROUND_MAX_WAITING_PER_USER = 1
    settings.PLAYGROUND_MAX_RUNNING_PER_USER = 0  # the model's own default
    log = Log()
    held = fake_pool.submit("fake-chat", log.job("hold", hold=True))
    log.wait_started("hold")

    def ask(caller: Caller | None) -> Job[Any]:
        params = SamplingParams(max_tokens=3)
        if caller is None:
            return text_stream(model_id="fake-chat", params=params, prompt="hi")
        with metered_as(caller):
            return text_stream(model_id="fake-chat", params=params, prompt="hi")

    mine = ask(Caller(user=user, source="playground", endpoint="ws/chat"))
    assert mine.owner == Owner(user=user.pk, token=None, max_waiting=1, max_running=None)
    with pytest.raises(RateLimitedError) as refused:  # through the API with a token: the same user's share
        ask(Caller(user=user, source="api", endpoint="/v1/chat/completions", token=None))
    assert (problem(refused.value).code, problem(refused.value).status) == ("rate_limit_exceeded", 429)
    theirs = ask(Caller(user=other_user, source="playground", endpoint="ws/chat"))
    operator = ask(None)  # outside any caller (operator tools): no owner, no cap
    assert operator.owner is None
    assert [j.position() for j in (mine, theirs, operator)] == [1, 2, 3]
    for job in (mine, theirs, operator):
        job.cancel()  # never started: nothing to meter
    log.release("hold")
    held.result()


def test_a_burst_into_free_slots_counts_only_the_jobs_that_must_wait():
    # However quickly the worker threads pick up the burst, 4 run and 2 wait; the 7th is one too many.
    w, log = worker(concurrency=4), Log()
    jobs = [w.submit(log.job(f"a{i}", hold=True), owner=user("A", max_waiting=2)) for i in range(6)]
    with pytest.raises(RateLimitedError, match="you have 2 requests waiting"):
        w.submit(log.job("a6"), owner=user("A", max_waiting=2))
    for i in range(6):
        log.release(f"a{i}")
    finish(jobs)
    assert sorted(log.started) == [f"a{i}" for i in range(6)]
