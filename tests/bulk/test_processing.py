"""Bulk job processing: exactly one result per prompt, across workers, crashes, cancels and retries.

The job is processed on threads here (the fake engines are instant); tests/bulk/test_worker_process.py
kills a real worker process with SIGKILL.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus
from django.utils import timezone

from inference.types import EngineError
from playground.bulk import processing
from playground.bulk.models import BulkItem, BulkJob
from playground.bulk.processing import job_process
from playground.bulk.services import job_cancel, job_create, job_retry, stalled_jobs_resume
from playground.bulk.tasks import run_bulk_job
from playground.bulk.worker import queue_worker
from playground.usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)  # workers write from their own threads


def results_of(job: BulkJob) -> list[tuple[int, str, str]]:
    items = BulkItem.objects.filter(job=job).exclude(state=BulkItem.State.CLAIMED).order_by("prompt__position")
    return [(i.prompt.position, i.state, i.text) for i in items]


def engine(pool, model_id: str = "fake-chat"):  # noqa: ANN001, ANN201
    return pool.call(model_id, lambda e: e)


@pytest.mark.metering
def test_a_job_runs_through_the_task_queue_once_per_prompt_metered_as_bulk(fake_pool, user, make_dataset):
    dataset = make_dataset(user, ["one", "two, with a comma", "three\nlines"])
    job = job_create(
        user=user,
        dataset=dataset,
        model_id="fake-chat",
        params={"temperature": 0.3, "max_tokens": 8, "seed": 7, "stop": []},
        system_prompt="Be terse.",
    )
    job.refresh_from_db()
    assert job.status == BulkJob.Status.QUEUED and len(job.task_ids) == 1
    assert run_bulk_job.get_result(job.task_ids[0]).status == TaskResultStatus.READY

    worker = queue_worker()
    worker.batch = True  # run what is queued, then return
    worker.run()

    job.refresh_from_db()
    assert job.status == BulkJob.Status.COMPLETED and job.started_at and job.finished_at
    assert run_bulk_job.get_result(job.task_ids[0]).status == TaskResultStatus.SUCCESSFUL
    assert [(p, s) for p, s, _ in results_of(job)] == [(1, "done"), (2, "done"), (3, "done")]
    first = BulkItem.objects.get(job=job, prompt__position=2)
    assert first.text.startswith("You said: two, with a comma")
    assert (first.prompt_tokens, first.completion_tokens, first.finish_reason) == (10, 8, "length")
    calls = engine(fake_pool).calls
    assert [c["messages"][0].content for c in calls] == ["Be terse."] * 3
    assert {(c["params"].temperature, c["params"].seed, c["params"].max_tokens) for c in calls} == {(0.3, 7, 8)}
    records = UsageRecord.objects.filter(user=user)
    assert records.count() == 3 and set(records.values_list("source", flat=True)) == {"bulk"}
    assert sum(r.completion_tokens for r in records) == 24


def test_bulk_prompts_go_behind_interactive_requests(fake_pool, user, make_dataset, monkeypatch):
    seen = []
    real_submit = fake_pool.submit

    def submit(model_id, fn, observer=None, *, background=False, owner=None):  # noqa: ANN001, ANN202
        seen.append(background)
        return real_submit(model_id, fn, observer, background=background, owner=owner)

    monkeypatch.setattr(fake_pool, "submit", submit)
    job = job_create(user=user, dataset=make_dataset(user, ["a", "b"]), model_id="fake-chat", params={})
    job_process(job.pk)
    assert seen == [True, True]


def test_a_completion_model_gets_the_system_prompt_before_each_prompt(fake_pool, user, make_dataset):
    dataset = make_dataset(user, ["Once upon a time"])
    job = job_create(user=user, dataset=dataset, model_id="fake-completion", params={}, system_prompt="A fable.")
    job_process(job.pk)
    assert engine(fake_pool, "fake-completion").calls[0]["prompt"] == "A fable.\n\nOnce upon a time"
    assert results_of(job)[0][2].startswith("and then")


def test_failed_prompts_fail_the_job_and_retry_runs_only_them(fake_pool, user, make_dataset, monkeypatch):
    dataset = make_dataset(user, ["fine", "BROKEN one", "fine again", "BROKEN two"])
    fake = engine(fake_pool)
    real_chat = fake.chat
    broken = {"on": True}

    def chat(messages, params, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202  (whatever the engine takes)
        if broken["on"] and "BROKEN" in messages[-1].content:
            raise EngineError("the engine could not run this prompt")
        return real_chat(messages, params, *args, **kwargs)

    monkeypatch.setattr(fake, "chat", chat)
    job = job_create(user=user, dataset=dataset, model_id="fake-chat", params={})
    job_process(job.pk)
    job.refresh_from_db()
    assert job.status == BulkJob.Status.FAILED
    assert [(p, s) for p, s, _ in results_of(job)] == [(1, "done"), (2, "failed"), (3, "done"), (4, "failed")]
    assert BulkItem.objects.get(job=job, prompt__position=2).error == "the engine could not run this prompt"

    broken["on"] = False
    fake.calls.clear()
    assert job_retry(job) == 2
    job.refresh_from_db()
    assert job.status == BulkJob.Status.QUEUED
    job_process(job.pk)
    job.refresh_from_db()
    assert job.status == BulkJob.Status.COMPLETED
    assert sorted(c["messages"][-1].content for c in fake.calls) == ["BROKEN one", "BROKEN two"]
    assert [(p, s) for p, s, _ in results_of(job)] == [(n, "done") for n in (1, 2, 3, 4)]


def test_retry_does_nothing_for_a_completed_or_running_job(fake_pool, user, make_dataset):
    job = job_create(user=user, dataset=make_dataset(user, ["a"]), model_id="fake-chat", params={})
    assert job_retry(job) == 0  # queued
    job_process(job.pk)
    assert job_retry(job) == 0  # completed
    job.refresh_from_db()
    assert job.status == BulkJob.Status.COMPLETED


def test_cancel_stops_the_running_prompt_in_the_engine_and_leaves_the_rest(fake_pool, user, make_dataset):
    fake = engine(fake_pool)
    fake.delay = 0.1  # 12 tokens: 1.2 s a prompt
    dataset = make_dataset(user, [f"prompt {n}" for n in range(1, 6)])
    job = job_create(user=user, dataset=dataset, model_id="fake-chat", params={"max_tokens": 12})
    runner = threading.Thread(target=job_process, args=(job.pk,))
    runner.start()
    deadline = time.monotonic() + 10
    while not BulkItem.objects.filter(job=job, state=BulkItem.State.DONE).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job_cancel(job)
    cancelled_at = time.monotonic()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert time.monotonic() - cancelled_at < 1.0  # the in-flight prompt stopped, it did not run to its end
    job.refresh_from_db()
    assert job.status == BulkJob.Status.CANCELLED
    assert not BulkItem.objects.filter(job=job, state=BulkItem.State.CLAIMED).exists()
    done = BulkItem.objects.filter(job=job).count()
    assert 1 <= done < 5 and not BulkItem.objects.filter(job=job, state=BulkItem.State.FAILED).exists()

    fake.delay = 0
    assert job_retry(job) == 5 - done  # a cancelled job can be resumed: the prompts never run
    job_process(job.pk)
    job.refresh_from_db()
    assert job.status == BulkJob.Status.COMPLETED
    assert [p for p, _, _ in results_of(job)] == [1, 2, 3, 4, 5]


def test_two_workers_share_a_job_and_every_prompt_gets_exactly_one_result(fake_pool, user, make_dataset):
    engine(fake_pool).delay = 0.005
    dataset = make_dataset(user, [f"q{n}" for n in range(40)])
    job = job_create(user=user, dataset=dataset, model_id="fake-chat", params={"max_tokens": 3})
    workers = [threading.Thread(target=job_process, args=(job.pk,), kwargs={"worker": f"w{n}"}) for n in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    job.refresh_from_db()
    assert job.status == BulkJob.Status.COMPLETED
    items = BulkItem.objects.filter(job=job)
    assert items.count() == 40 and set(items.values_list("state", flat=True)) == {"done"}
    assert set(items.values_list("worker", flat=True)) == {"w1", "w2"}  # both did part of it
    assert len(engine(fake_pool).calls) == 40  # no prompt generated twice


def test_a_dead_workers_claims_are_taken_over_when_their_lease_runs_out(fake_pool, user, make_dataset):
    dataset = make_dataset(user, ["a", "b", "c"])
    job = job_create(user=user, dataset=dataset, model_id="fake-chat", params={})
    BulkJob.objects.filter(pk=job.pk).update(status=BulkJob.Status.PROCESSING)
    prompt = dataset.prompts.get(position=2)
    BulkItem.objects.create(job=job, prompt=prompt, worker="dead", lease_until=timezone.now() - timedelta(seconds=1))
    job_process(job.pk, worker="alive")
    job.refresh_from_db()
    assert job.status == BulkJob.Status.COMPLETED
    assert list(BulkItem.objects.filter(job=job).values_list("worker", "state")) == [("alive", "done")] * 3


def test_a_live_claim_elsewhere_is_waited_for_not_duplicated(fake_pool, user, make_dataset):
    dataset = make_dataset(user, ["a", "b"])
    job = job_create(user=user, dataset=dataset, model_id="fake-chat", params={})
    held = BulkItem.objects.create(
        job=job, prompt=dataset.prompts.get(position=1), worker="other", lease_until=timezone.now() + timedelta(hours=1)
    )
    runner = threading.Thread(target=job_process, args=(job.pk,), kwargs={"worker": "me"})
    runner.start()
    time.sleep(0.5)
    assert runner.is_alive()  # prompt 2 done; waiting on the other worker's prompt 1
    BulkItem.objects.filter(pk=held.pk).update(state=BulkItem.State.DONE, text="theirs")
    runner.join(timeout=5)
    job.refresh_from_db()
    assert job.status == BulkJob.Status.COMPLETED
    assert results_of(job) == [(1, "done", "theirs"), (2, "done", results_of(job)[1][2])]
    assert len(engine(fake_pool).calls) == 1


def test_the_sweep_re_enqueues_only_jobs_nobody_works_on(fake_pool, user, make_dataset, monkeypatch):
    dataset = make_dataset(user, ["a"])
    long_ago = timezone.now() - timedelta(minutes=5)
    job_create(user=user, dataset=dataset, model_id="fake-chat", params={})  # waiting: its task is READY
    running = job_create(user=user, dataset=dataset, model_id="fake-chat", params={})
    dead = job_create(user=user, dataset=dataset, model_id="fake-chat", params={})
    lost = job_create(user=user, dataset=dataset, model_id="fake-chat", params={})  # enqueue never happened
    BulkJob.objects.update(created_at=long_ago)
    BulkJob.objects.filter(pk=running.pk).update(status="processing", heartbeat_at=timezone.now())
    BulkJob.objects.filter(pk=dead.pk).update(status="processing", heartbeat_at=long_ago)
    BulkJob.objects.filter(pk=lost.pk).update(task_ids=[])
    from django_tasks_db.models import DBTaskResult

    dead.refresh_from_db()
    DBTaskResult.objects.filter(id=dead.task_ids[0]).update(status="RUNNING", started_at=long_ago)
    assert sorted(stalled_jobs_resume()) == sorted([dead.pk, lost.pk])
    dead.refresh_from_db()
    assert run_bulk_job.get_result(dead.task_ids[0]).status == TaskResultStatus.READY  # a fresh task
    assert stalled_jobs_resume() == []  # its heartbeat moved: not enqueued twice


def test_a_job_whose_model_left_the_catalog_fails_with_a_reason(fake_pool, user, make_dataset):
    job = job_create(user=user, dataset=make_dataset(user, ["a"]), model_id="fake-chat", params={})
    BulkJob.objects.filter(pk=job.pk).update(model_id="gone-model")
    job_process(job.pk)
    job.refresh_from_db()
    assert job.status == BulkJob.Status.FAILED and "no longer valid" in job.error


def test_worker_names_are_unique_per_run():
    assert processing.worker_name() != processing.worker_name()
