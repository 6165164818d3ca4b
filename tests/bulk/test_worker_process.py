"""A real bulk worker process, on the real small model, killed with SIGKILL mid-job and restarted:
the job resumes and every prompt ends with exactly one result."""

from __future__ import annotations

import pytest

from playground import engines
from playground.bulk.models import BulkItem, BulkJob
from playground.bulk.services import job_create
from playground.usage.models import UsageRecord
from tests.bulk.workers import kill_mid_job_then_resume

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "smollm2-135m-instruct"
PROMPTS = [f"Name a fruit that starts with the letter {letter}." for letter in "ABCDEFGHIJKL"]


def test_a_worker_killed_mid_job_is_resumed_with_exactly_one_result_per_prompt(user, make_dataset, tmp_path):
    engines.set_pool(None)  # the real catalog: this test's job names a real model
    dataset = make_dataset(user, PROMPTS)
    job = job_create(user=user, dataset=dataset, model_id=MODEL, params={"max_tokens": 24, "temperature": 0})

    kill_mid_job_then_resume(job, tmp_path / "worker.log", after=3)

    job.refresh_from_db()
    items = list(BulkItem.objects.filter(job=job).select_related("prompt"))
    failed = [(i.prompt.position, i.state, i.error) for i in items if i.state != BulkItem.State.DONE]
    assert job.status == BulkJob.Status.COMPLETED, (job.error, failed)
    assert sorted(i.prompt.position for i in items) == list(range(1, len(PROMPTS) + 1))  # one each, none lost
    assert all(i.state == BulkItem.State.DONE and i.text.strip() and i.completion_tokens for i in items)
    assert len({i.worker for i in items}) >= 2  # the second worker finished what the first could not
    assert UsageRecord.objects.filter(source="bulk", model_id=MODEL).count() >= len(PROMPTS)
