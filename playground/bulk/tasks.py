"""The background task a bulk job runs as (Django's Tasks framework; the backend is a setting)."""

from __future__ import annotations

from django.tasks import task

from playground.bulk.processing import job_process


@task
def run_bulk_job(job_id: int) -> None:
    job_process(job_id)
