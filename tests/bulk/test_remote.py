"""A bulk job on a remote model: it waits while every upstream is down and finishes once one is back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from inference import EnginePool
from playground.bulk.models import BulkItem, BulkJob
from playground.bulk.processing import job_process
from playground.bulk.services import job_create
from playground.usage.models import UsageRecord
from tests.upstream import WORDS, FakeUpstream, fake_upstream, installed_pool, remote_spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.metering]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with fake_upstream() as up:
        yield up


@pytest.fixture
def remote_pool(upstream: FakeUpstream) -> Iterator[EnginePool]:
    with installed_pool(remote_spec("remote-chat", "text-to-text", upstream)) as pool:
        yield pool


def test_a_bulk_job_waits_out_an_upstream_outage(remote_pool, upstream, user, make_dataset):
    upstream.mode = "down"
    dataset = make_dataset(user, ["one", "two", "three"])
    job = job_create(user=user, dataset=dataset, model_id="remote-chat", params={"max_tokens": 8}, system_prompt="")
    worker = threading.Thread(target=job_process, args=(job.pk,), kwargs={"worker": "w1"})
    worker.start()
    deadline = time.monotonic() + 10
    while not upstream.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # refused while it is down: the job waits instead of failing its prompts
    assert not BulkItem.objects.filter(job=job, state=BulkItem.State.FAILED).exists()
    upstream.mode = "ok"  # back: the health check (1 s back-off) lets the waiting prompt through
    worker.join(30)
    job.refresh_from_db()
    assert job.status == BulkJob.Status.COMPLETED
    items = BulkItem.objects.filter(job=job).order_by("prompt__position")
    assert [i.text for i in items] == ["".join(WORDS)] * 3
    records = UsageRecord.objects.filter(model_id="remote-chat")
    assert records.count() == 3 and {r.outcome for r in records} == {"finished"}  # the refused tries cost nothing
