"""`manage.py bulk_worker`: one bulk worker process (the queue's worker plus the stalled-job sweep)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand

from playground.bulk.worker import Sweeper, database_queue, queue_worker, redis_worker_run


class Command(BaseCommand):
    help = "Run a bulk worker: processes queued bulk jobs and resumes jobs whose worker died."

    def handle(self, *args: Any, **options: Any) -> None:
        Sweeper().start()
        if not database_queue():
            self.stdout.write("bulk worker started on the Redis queue")
            self.stdout.flush()
            redis_worker_run()
            return
        logging.getLogger("django_tasks_db").setLevel(logging.INFO)
        worker = queue_worker()
        self.stdout.write(f"bulk worker {worker.worker_id} started on the database queue")
        self.stdout.flush()
        worker.configure_signals()
        worker.run()
