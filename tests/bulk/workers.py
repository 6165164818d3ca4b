"""Real `manage.py bulk_worker` processes for the crash tests: start one, kill it mid-job, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.db import connection

from playground.bulk.models import BulkItem, BulkJob
from tests.livesite import REPO


def start_worker(log: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    """A worker process on this test's database file (its output appended to `log`)."""
    env = {
        **os.environ,
        "PLAYGROUND_SQLITE_PATH": str(connection.settings_dict["NAME"]),
        "PLAYGROUND_BULK_LEASE": "2",
        "PLAYGROUND_BULK_POLL": "0.1",
        "PLAYGROUND_THREADS": "2",
        **extra_env,
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


def kill_mid_job_then_resume(job: BulkJob, log: Path, *, after: int, **extra_env: str) -> None:
    """SIGKILL a worker once `after` prompts are done (and before all are), then let a second finish the job."""
    done = BulkItem.objects.filter(job=job, state=BulkItem.State.DONE)
    first = start_worker(log, **extra_env)
    try:
        wait_for(lambda: done.count() >= after, 120, log)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert BulkJob.objects.get(pk=job.pk).status == BulkJob.Status.PROCESSING
    assert done.count() < job.total
    second = start_worker(log, **extra_env)
    try:
        wait_for(lambda: BulkJob.objects.get(pk=job.pk).finished, 180, log)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still in a prompt: do not hide why the job did not finish
            second.kill()
            second.wait()
