"""System checks: a catalog that does not parse is an error; missing weights are a warning.

A model whose weights are missing must not stop the site serving the others.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register

from inference.catalog import CatalogError
from playground import engines


@register(Tags.models)
def check_catalog(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        specs = engines.catalog_specs()
    except CatalogError as exc:
        return [Error(f"the model catalog is invalid: {exc}", id="catalog.E001")]
    return [
        Warning(
            f"model {spec.id!r}: weights not found at {spec.path}",
            hint="Run the set-up (./dev run or ./dev test) to prepare the default models, "
            "or point this catalog entry's path at a GGUF file / CTranslate2 directory.",
            id="catalog.W001",
        )
        for spec in specs
        if not spec.weights_present
    ]
