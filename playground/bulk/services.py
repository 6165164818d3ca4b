"""Datasets: create one, and add a CSV's prompts to it, all or nothing."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from playground.bulk.csvfile import prompts_read
from playground.bulk.models import Dataset, Prompt

BATCH = 2000  # rows per INSERT: memory stays flat however large the file


def dataset_create(*, user: AbstractBaseUser, name: str) -> Dataset:
    dataset, _ = Dataset.objects.get_or_create(user=user, name=name.strip())
    return dataset


def dataset_upload(*, dataset: Dataset, path: Path) -> int:
    """Append every prompt of the CSV at `path` to the dataset; returns how many.

    The file is parsed as a stream; a problem anywhere (raised as CsvProblem) rolls the whole upload
    back, so a dataset never holds half a file and what it held before is untouched.
    """
    with transaction.atomic():
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()  # one upload into a dataset at a time
        start = (dataset.prompts.aggregate(last=Max("position"))["last"] or 0) + 1
        batch: list[Prompt] = []
        count = 0
        for row in prompts_read(path):
            batch.append(Prompt(dataset=dataset, position=start + count, source_line=row.line, text=row.prompt))
            count += 1
            if len(batch) >= BATCH:
                Prompt.objects.bulk_create(batch)
                batch.clear()
        Prompt.objects.bulk_create(batch)
    return count
