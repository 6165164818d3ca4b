"""A real bulk worker process, on the real small model, killed with SIGKILL mid-job and restarted:
the job resumes and every prompt ends with exactly one result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

from playground import engines
from playground.bulk.models import BulkItem, BulkJob
from playground.bulk.services import job_create
from playground.usage.models import UsageRecord
from tests.livesite import REPO

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "smollm2-135m-instruct"
PROMPTS = [f"Name a fruit that starts with the letter {letter}." for letter in "ABCDEFGHIJKL"]


def start_worker(log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PLAYGROUND_SQLITE_PATH": str(connection.settings_dict["NAME"]),  # this test's database file
        "PLAYGROUND_BULK_LEASE": "2",
        "PLAYGROUND_BULK_POLL": "0.1",
        "PLAYGROUND_THREADS": "2",
    }
    handle = open(log, "ab")  # noqa: SIM115  (the child keeps it)
    return subprocess.Popen(
        [sys.executable, "manage.py", "bulk_worker"], cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT
    )


def wait_for(condition: Callable[[], bool], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)


def test_a_worker_killed_mid_job_is_resumed_with_exactly_one_result_per_prompt(user, make_dataset, tmp_path):
    engines.set_pool(None)  # the real catalog: this test's job names a real model
    dataset = make_dataset(user, PROMPTS)
    job = job_create(user=user, dataset=dataset, model_id=MODEL, params={"max_tokens": 24, "temperature": 0})
    log = tmp_path / "worker.log"
    done = BulkItem.objects.filter(job=job, state=BulkItem.State.DONE)

    first = start_worker(log)
    try:
        wait_for(lambda: done.count() >= 3, 120, log)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    job.refresh_from_db()
    assert job.status == BulkJob.Status.PROCESSING
    before = done.count()
    assert before < len(PROMPTS)

    second = start_worker(log)
    try:
        wait_for(lambda: BulkJob.objects.get(pk=job.pk).finished, 180, log)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    job.refresh_from_db()
    assert job.status == BulkJob.Status.COMPLETED, job.error
    items = list(BulkItem.objects.filter(job=job).select_related("prompt"))
    assert sorted(i.prompt.position for i in items) == list(range(1, len(PROMPTS) + 1))  # one each, none lost
    assert all(i.state == BulkItem.State.DONE and i.text.strip() and i.completion_tokens for i in items)
    assert len({i.worker for i in items}) >= 2  # the second worker finished what the first could not
    assert UsageRecord.objects.filter(source="bulk", model_id=MODEL).count() >= len(PROMPTS)
