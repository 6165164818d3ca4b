"""Bulk workers: the task queue's worker loop, plus the sweep that resumes stalled jobs.

With the database queue, `./dev run` runs workers as threads inside the site's process (sharing its
engines, so bulk prompts wait behind the site's interactive requests in each model's queue) and
`manage.py bulk_worker` runs one as a process of its own. With the Redis queue, workers are always
`manage.py bulk_worker` processes (RQ's worker, without forking, so engines stay loaded between jobs).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.management import call_command
from django.db import close_old_connections
from django.tasks import task_backends
from django.utils.crypto import get_random_string
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.management.commands.db_worker import Worker

from playground.bulk.services import stalled_jobs_resume

logger = logging.getLogger(__name__)


def database_queue(backend: str = "default") -> bool:
    return isinstance(task_backends[backend], DatabaseBackend)


def queue_worker(*, backend: str = "default") -> Worker:
    """A worker of the database queue (django-tasks-db's own loop)."""
    if not database_queue(backend):
        raise RuntimeError(f"the task backend {backend!r} is not database-backed")
    return Worker(
        queue_names=["default"],
        interval=settings.PLAYGROUND_BULK_POLL,
        batch=False,
        backend_name=backend,
        startup_delay=False,
        max_tasks=None,
        worker_id=get_random_string(32),
        excluded_queue_names=[],
    )


def redis_worker_run() -> None:
    """RQ's worker on the 'default' queue, in this process (blocks; SIGTERM stops it after the current job)."""
    call_command(
        "rqworker",
        "default",
        worker_class="rq.worker.SimpleWorker",  # no fork per job: the engines stay loaded
        job_class="django_tasks_rq.backend.Job",  # runs Django Tasks' tasks
    )


class Sweeper(threading.Thread):
    """Every lease period, re-enqueue jobs that no live worker is on (their worker died)."""

    def __init__(self) -> None:
        super().__init__(name="bulk-sweeper", daemon=True)
        self.halt = threading.Event()

    def run(self) -> None:
        while True:
            try:
                stalled_jobs_resume()
            except Exception:
                logger.exception("bulk sweep failed; trying again next period")
            finally:
                close_old_connections()
            if self.halt.wait(settings.PLAYGROUND_BULK_LEASE):
                return


def start_in_process(count: int) -> list[Worker]:
    """Start `count` database-queue workers and one sweeper as daemon threads of this process."""
    if not database_queue():
        logger.warning("PLAYGROUND_BULK_WORKERS is ignored with the Redis queue: run `manage.py bulk_worker`")
        return []
    workers = [queue_worker() for _ in range(count)]
    for n, worker in enumerate(workers):
        threading.Thread(target=worker.run, name=f"bulk-worker-{n}", daemon=True).start()
    Sweeper().start()
    logger.info("started %d in-process bulk worker(s)", count)
    return workers
