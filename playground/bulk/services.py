"""Datasets (create, add a CSV all or nothing) and bulk jobs (start, cancel, retry, delete, report)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.tasks import TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from inference.types import InvalidRequestError
from playground import serving
from playground.bulk.csvfile import prompts_read
from playground.bulk.models import BulkItem, BulkJob, Dataset, Prompt
from playground.bulk.processing import lease
from playground.serving import TEXT_TASKS

logger = logging.getLogger(__name__)

try:  # the Redis queue's backend (django-tasks-rq) raises the django-tasks backport's exception
    from django_tasks.exceptions import TaskResultDoesNotExist as BackportTaskResultDoesNotExist

    NO_SUCH_TASK: tuple[type[Exception], ...] = (TaskResultDoesNotExist, BackportTaskResultDoesNotExist)
except ImportError:  # pragma: no cover
    NO_SUCH_TASK = (TaskResultDoesNotExist,)

BATCH = 2000  # rows per INSERT: memory stays flat however large the file


def dataset_create(*, user: AbstractBaseUser, name: str) -> Dataset:
    dataset, _ = Dataset.objects.get_or_create(user=user, name=name.strip())
    return dataset


def dataset_upload(*, dataset: Dataset, path: Path) -> int:
    """Append every prompt of the CSV at `path` to the dataset; returns how many.

    The file is parsed as a stream and inserted in batches (plain multi-row INSERTs: a 500 MB file is
    millions of rows); a problem anywhere (raised as CsvProblem) rolls the whole upload back, so a
    dataset never holds half a file and what it held before is untouched.
    """
    table = connection.ops.quote_name(Prompt._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in ("dataset_id", "position", "source_line", "text"))
    sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s)"
    with transaction.atomic():
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()  # one upload into a dataset at a time
        start = (dataset.prompts.aggregate(last=Max("position"))["last"] or 0) + 1
        batch: list[tuple[int, int, int, str]] = []
        count = 0
        with connection.cursor() as cursor:
            for row in prompts_read(path):
                batch.append((dataset.pk, start + count, row.line, row.prompt))
                count += 1
                if len(batch) >= BATCH:
                    cursor.executemany(sql, batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)
    return count


def job_create(
    *, user: AbstractBaseUser, dataset: Dataset, model_id: str, params: dict[str, Any], system_prompt: str = ""
) -> BulkJob:
    """Queue a job over the dataset's prompts as they are now; returns at once."""
    serving.model_for(model_id=model_id, tasks=TEXT_TASKS, where="a bulk job (text models)")
    last = dataset.prompts.aggregate(last=Max("position"))["last"] or 0
    if not last:
        raise InvalidRequestError(f"the dataset {dataset.name!r} has no prompts yet")
    with transaction.atomic():
        job = BulkJob.objects.create(
            user=user,
            dataset=dataset,
            model_id=model_id,
            params=params,
            system_prompt=system_prompt,
            total=dataset.prompts.filter(position__lte=last).count(),
            last_position=last,
        )
        transaction.on_commit(lambda: job_enqueue(job))
    return job


def job_enqueue(job: BulkJob) -> None:
    """Hand the job to the task queue: PLAYGROUND_BULK_PARALLEL tasks, so that many workers can share it.
    If this fails the job stays queued and a worker's sweep enqueues it again."""
    from playground.bulk.tasks import run_bulk_job

    ids = []
    try:
        for _ in range(max(1, settings.PLAYGROUND_BULK_PARALLEL)):
            ids.append(str(run_bulk_job.enqueue(job.pk).id))
    except Exception:
        logger.exception("could not enqueue bulk job %s; a worker's sweep will", job.pk)
    if ids:
        BulkJob.objects.filter(pk=job.pk).update(task_ids=ids)


def job_cancel(job: BulkJob) -> bool:
    """Stop a queued or running job: the prompt being generated stops in the engine within a heartbeat."""
    cancelled = BulkJob.objects.filter(pk=job.pk, status__in=(BulkJob.Status.QUEUED, BulkJob.Status.PROCESSING)).update(
        status=BulkJob.Status.CANCELLED, finished_at=timezone.now()
    )
    return bool(cancelled)


def job_retry(job: BulkJob) -> int:
    """Run again only the prompts that failed (and, for a cancelled job, those never run). Returns how many."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job.pk)
        if job.status not in (BulkJob.Status.FAILED, BulkJob.Status.CANCELLED):
            return 0
        BulkItem.objects.filter(job=job).exclude(state=BulkItem.State.DONE).delete()
        pending = job.total - BulkItem.objects.filter(job=job).count()
        if not pending:
            return 0
        job.status = BulkJob.Status.QUEUED
        job.error = ""
        job.finished_at = None
        job.heartbeat_at = None
        job.save(update_fields=["status", "error", "finished_at", "heartbeat_at"])
        transaction.on_commit(lambda: job_enqueue(job))
    return pending


def job_delete(job: BulkJob) -> bool:
    """Delete a finished job and its results (a queued or running one must be cancelled first)."""
    return bool(BulkJob.objects.filter(pk=job.pk, status__in=BulkJob.FINISHED).delete()[0])


def jobs_clear(*, user: AbstractBaseUser) -> int:
    """Remove every Completed or Failed job of the user, and only those."""
    jobs = BulkJob.objects.filter(user=user, status__in=BulkJob.CLEARABLE)
    count = jobs.count()
    jobs.delete()
    return count


def jobs_with_progress(jobs: QuerySet[BulkJob]) -> QuerySet[BulkJob]:
    return jobs.select_related("dataset").annotate(
        done_count=Count("items", filter=Q(items__state=BulkItem.State.DONE)),
        failed_count=Count("items", filter=Q(items__state=BulkItem.State.FAILED)),
    )


def job_progress(job: BulkJob, *, now: datetime | None = None) -> dict[str, Any]:
    """Done, failed, total and the estimated seconds left (from this run's pace), for the history table."""
    now = now or timezone.now()
    done = getattr(job, "done_count", None)
    failed = getattr(job, "failed_count", None)
    if done is None or failed is None:
        counts = job.items.aggregate(
            done=Count("pk", filter=Q(state=BulkItem.State.DONE)),
            failed=Count("pk", filter=Q(state=BulkItem.State.FAILED)),
        )
        done, failed = counts["done"], counts["failed"]
    finished = done + failed
    eta = None
    if job.status == BulkJob.Status.PROCESSING and job.started_at and finished:
        recent = job.items.exclude(state=BulkItem.State.CLAIMED).filter(finished_at__gte=job.started_at).count()
        elapsed = (now - job.started_at).total_seconds()
        if recent and elapsed > 0:
            eta = round(elapsed / recent * (job.total - finished))
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "done": done,
        "failed": failed,
        "total": job.total,
        "percent": round(100 * finished / job.total) if job.total else 100,
        "eta_seconds": eta,
        "finished": job.finished,
        "error": job.error,
    }


def _aware(moment: datetime) -> datetime:
    """RQ reports naive UTC times; the database backend aware ones."""
    return timezone.make_aware(moment, UTC) if timezone.is_naive(moment) else moment


def _task_alive(task_id: str, *, now: datetime, stale: datetime) -> bool:
    """Whether the task is still waiting for a worker, or started so recently that its heartbeat may lag."""
    from playground.bulk.tasks import run_bulk_job

    try:
        task = run_bulk_job.get_result(task_id)
    except NO_SUCH_TASK:
        return False
    if task.status == TaskResultStatus.READY:
        return True
    return task.status == TaskResultStatus.RUNNING and _aware(task.started_at or now) > stale


def stalled_jobs_resume(*, now: datetime | None = None) -> list[int]:
    """Re-enqueue every unfinished job that no live worker is on and no queued task will pick up.

    Run by each worker at start and then periodically: this is what resumes a job whose worker was
    killed (its task is left 'running' forever by the queue; its claims expire and are taken over).
    """
    now = now or timezone.now()
    stale = now - lease()
    resumed = []
    candidates = BulkJob.objects.filter(status__in=(BulkJob.Status.QUEUED, BulkJob.Status.PROCESSING)).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale)
    )
    for job in candidates.filter(created_at__lt=stale):
        if any(_task_alive(task_id, now=now, stale=stale) for task_id in job.task_ids):
            continue
        # Only one sweeper re-enqueues a given stalled job: whoever moves its heartbeat first.
        if BulkJob.objects.filter(pk=job.pk, heartbeat_at=job.heartbeat_at).update(heartbeat_at=now):
            logger.warning("bulk job %s has no live worker: enqueueing it again", job.pk)
            job_enqueue(job)
            resumed.append(job.pk)
    return resumed


def result_rows(job: BulkJob) -> QuerySet[BulkItem]:
    """The job's results in prompt order (claims in flight are not results)."""
    return job.items.exclude(state=BulkItem.State.CLAIMED).select_related("prompt").order_by("prompt__position")
