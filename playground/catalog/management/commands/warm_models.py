from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference import EngineError
from playground import engines


class Command(BaseCommand):
    help = "Load models into memory in this process and report each one's device (checks that they load)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model_ids", nargs="*", help="only these models (default: all with weights)")

    def handle(self, *args: Any, model_ids: list[str], **options: Any) -> None:
        pool = engines.get_pool()
        self.stdout.write(f"device: {pool.device.device} ({pool.device.reason})")
        failed = False
        for job in pool.warm(model_ids or None):
            worker = job.worker
            try:
                job.result()
                note = f" ({worker.note})" if worker.note else ""
                self.stdout.write(f"{worker.model_id}: loaded on {worker.device}{note}")
            except EngineError as exc:
                failed = True
                self.stderr.write(f"{worker.model_id}: FAILED: {exc}")
        if failed:
            raise CommandError("some models failed to load")
