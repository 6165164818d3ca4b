from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference.buildcheck import RECORD_NAME, SetupError, Target, ensure_engines
from playground import engines


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = (
        "Install a llama.cpp build that runs on this machine and prove every catalog model with a tiny real "
        "inference in a child process (the set-up runs this; see inference/buildcheck.py)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--threads", type=int, default=None, help="default: PLAYGROUND_THREADS, as the site")

    def handle(self, *args: Any, threads: int | None, **options: Any) -> None:
        targets = [
            Target(spec.id, spec.task, spec.engine, spec.path, spec.options)
            for spec in engines.catalog_specs()
            if spec.engine != "fake" and spec.weights_present
        ]
        forced = os.environ.get("CMAKE_ARGS") or None
        try:
            record = ensure_engines(
                targets,
                python=sys.executable,
                threads=threads or settings.PLAYGROUND_THREADS,
                record_path=Path(sys.prefix) / RECORD_NAME,
                forced=forced,
                say=lambda line: self.stdout.write(line),
            )
        except SetupError as exc:
            raise CommandError(str(exc)) from exc
        flags = " ".join(record.cpu_flags) or "none of note"
        self.stdout.write(f"llama.cpp build: {record.variant} ({record.cmake_args}); CPU flags: {flags}")
