"""The Redis-backed queue (django-tasks-rq over RQ, PLAYGROUND_TASKS_BACKEND=redis): a job is enqueued in
Redis, run by a `bulk_worker` process on the real small model, and resumed by another after the first is
killed with SIGKILL, with exactly one result per prompt. Needs Redis on loopback (as CI machines have)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection
from redis import Redis

from playground.bulk.models import BulkItem, BulkJob
from tests.bulk.test_worker_process import MODEL
from tests.bulk.workers import kill_mid_job_then_resume
from tests.livesite import REPO

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("PLAYGROUND_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PROMPTS = [f"Give one word that rhymes with {word}." for word in ("cat", "sun", "tree", "blue", "day", "light")]


def test_a_job_on_the_redis_queue_survives_its_worker_being_killed(user, make_dataset, tmp_path):
    redis = Redis.from_url(REDIS_URL)
    try:
        redis.ping()
    except Exception as exc:
        pytest.fail(f"Redis is needed at {REDIS_URL} (set PLAYGROUND_TEST_REDIS_URL): {exc}")
    redis.flushdb()
    env = {
        **os.environ,
        "PLAYGROUND_TASKS_BACKEND": "redis",
        "PLAYGROUND_REDIS_URL": REDIS_URL,
        "PLAYGROUND_SQLITE_PATH": str(connection.settings_dict["NAME"]),
        "PLAYGROUND_BULK_LEASE": "2",
        "PLAYGROUND_THREADS": "2",
    }
    dataset = make_dataset(user, PROMPTS)
    create = (
        "from playground.bulk.models import Dataset; from playground.bulk.services import job_create; "
        f"d = Dataset.objects.get(pk={dataset.pk}); "
        f"print(job_create(user=d.user, dataset=d, model_id={MODEL!r}, params={{'max_tokens': 24}}).pk)"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", create],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    job = BulkJob.objects.get(pk=int(out.stdout.split()[-1]))
    assert redis.lrange("rq:queue:default", 0, -1) == [job.task_ids[0].encode()]

    kill_mid_job_then_resume(
        job,
        tmp_path / "worker.log",
        after=2,
        PLAYGROUND_TASKS_BACKEND="redis",
        PLAYGROUND_REDIS_URL=REDIS_URL,
    )
    job.refresh_from_db()
    assert job.status == BulkJob.Status.COMPLETED, job.error
    positions = sorted(
        BulkItem.objects.filter(job=job, state=BulkItem.State.DONE).values_list("prompt__position", flat=True)
    )
    assert positions == list(range(1, len(PROMPTS) + 1))
    redis.flushdb()
