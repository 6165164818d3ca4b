"""Bulk job fixtures: a dataset of prompts, and short leases so takeovers happen within a test."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from playground.bulk.models import Dataset, Prompt


@pytest.fixture
def make_dataset() -> Callable[..., Dataset]:
    def make(user, prompts: list[str], name: str = "Questions") -> Dataset:  # noqa: ANN001
        dataset = Dataset.objects.create(user=user, name=name)
        Prompt.objects.bulk_create(
            Prompt(dataset=dataset, position=n, source_line=n + 1, text=text) for n, text in enumerate(prompts, 1)
        )
        return dataset

    return make


@pytest.fixture(autouse=True)
def _short_lease(settings) -> None:  # noqa: ANN001
    settings.PLAYGROUND_BULK_LEASE = 1.2  # heartbeats every 0.2 s
    settings.PLAYGROUND_BULK_POLL = 0.05
