"""Datasets (create, add a CSV all or nothing, rename, delete) and bulk jobs (start, cancel, retry or resume,
delete, report, results)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.tasks import TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from inference.types import InvalidRequestError
from playground import serving
from playground.bulk.csvfile import prompts_read
from playground.bulk.models import BulkItem, BulkJob, Dataset, Prompt
from playground.bulk.processing import lease
from playground.projects.models import Project
from playground.projects.services import project_personal
from playground.serving import TEXT_TASKS

logger = logging.getLogger(__name__)

try:  # the Redis queue's backend (django-tasks-rq) raises the django-tasks backport's exception
    from django_tasks.exceptions import TaskResultDoesNotExist as BackportTaskResultDoesNotExist

    NO_SUCH_TASK: tuple[type[Exception], ...] = (TaskResultDoesNotExist, BackportTaskResultDoesNotExist)
except ImportError:  # pragma: no cover
    NO_SUCH_TASK = (TaskResultDoesNotExist,)

BATCH = 2000  # rows per INSERT and per transaction: other writers get a turn between two batches
DISCARD_BATCH = 5000  # rows per DELETE when an upload's rows are removed
UPLOAD_LEASE = timedelta(seconds=60)  # an upload not heard from for this long is taken for dead
RESULT_BATCH = 500  # a download reads the job's results this many prompts at a time
RESULTS_PAGE = 50  # prompts per page of the results view
UPLOAD_LOST = "the upload stopped: it was interrupted for too long, or the dataset was deleted; upload the file again"


class UploadRefused(Exception):
    """The upload cannot go on (another one into the same dataset is running, or this one was taken over);
    the message is meant for the person who uploaded the file."""


class DatasetBusy(Exception):
    """The dataset cannot be deleted now: a job over it is queued or running (the message says so)."""


def dataset_create(*, user: AbstractBaseUser, name: str, project: Project | None = None) -> Dataset:
    """The project's dataset of this name (default: the user's personal project), created by the user if new."""
    project = project or project_personal(user=user)
    dataset, _ = Dataset.objects.get_or_create(project=project, name=name.strip(), defaults={"user": user})
    return dataset


def datasets_with_counts(*, project: Project) -> QuerySet[Dataset]:
    """The project's datasets with `prompt_count`: the prompts they hold (an upload still in progress not counted),
    newest first (an aggregate drops Meta.ordering, so it is given here)."""
    visible = Q(upload_from__isnull=True) | Q(prompts__position__lt=F("upload_from"))
    counted = Dataset.objects.filter(project=project).annotate(prompt_count=Count("prompts", filter=visible))
    return counted.order_by("-created_at", "-pk")


def dataset_rename(*, dataset: Dataset, name: str) -> bool:
    """Give the dataset another name; False when its project already has a dataset of that name."""
    name = " ".join(name.split())
    try:
        with transaction.atomic():
            Dataset.objects.filter(pk=dataset.pk).update(name=name)
    except IntegrityError:  # dataset_name_per_project
        return False
    dataset.name = name
    return True


def dataset_delete(*, dataset: Dataset) -> int:
    """Delete the dataset with its prompts and every job run over it, results included; returns how many jobs went.

    Refused (DatasetBusy) while one of its jobs is queued or running: cancel it first, as for deleting a job.
    A first short transaction deletes the jobs and hides every prompt at once (`upload_from = 0`, as an upload
    that died leaves its rows: no page shows them and no job can start over the dataset, and an upload running
    into it stops); the prompts then go in short transactions of DISCARD_BATCH rows, as a failed upload's do,
    so that other writers get a turn however large the dataset; last, the dataset row. Should the process die
    midway, the dataset stays, empty: deleting it again, or uploading into it, removes what is left.
    """
    with transaction.atomic():
        if not Dataset.objects.select_for_update().filter(pk=dataset.pk).exists():
            return 0
        jobs = BulkJob.objects.filter(dataset=dataset)
        if jobs.exclude(status__in=BulkJob.FINISHED).exists():
            raise DatasetBusy("a job over this dataset is queued or running; cancel it first, then delete the dataset")
        count = jobs.count()
        jobs.delete()  # their results with them (one DELETE per table)
        Dataset.objects.filter(pk=dataset.pk).update(upload_from=0, upload_token="", upload_seen_at=None)
    _prompts_delete(dataset)
    Dataset.objects.filter(pk=dataset.pk).delete()
    return count


def _prompts_delete(dataset: Dataset) -> None:
    """Delete every stored prompt of the dataset, DISCARD_BATCH positions per transaction."""
    last = Prompt.stored.filter(dataset=dataset).aggregate(last=Max("position"))["last"]
    if last is None:
        return
    table = connection.ops.quote_name(Prompt._meta.db_table)
    dataset_col, position_col = (connection.ops.quote_name(c) for c in ("dataset_id", "position"))
    sql = f"DELETE FROM {table} WHERE {dataset_col} = %s AND {position_col} < %s"
    for high in range(DISCARD_BATCH, last + DISCARD_BATCH + 1, DISCARD_BATCH):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [dataset.pk, high])


def dataset_drop_if_empty(dataset: Dataset) -> bool:
    """Delete a dataset that holds no prompt and has no upload in progress (a new one whose only file was refused)."""
    stored = Prompt.stored.filter(dataset=OuterRef("pk"))
    empty = Dataset.objects.filter(pk=dataset.pk, upload_token="").exclude(Exists(stored))
    return bool(empty.delete()[0])


def dataset_uploading(dataset: Dataset) -> bool:
    """Whether a file is being added to the dataset right now (its prompts are not shown yet)."""
    seen = dataset.upload_seen_at
    return bool(dataset.upload_token) and seen is not None and seen > timezone.now() - UPLOAD_LEASE


def dataset_upload(*, dataset: Dataset, path: Path, ignored: list[str] | None = None) -> int:
    """Append every prompt of the CSV at `path` to the dataset, all or nothing; returns how many. The file's
    columns other than `prompts` are left out, and named in `ignored` if it is given (csvfile.prompts_read).

    The file is parsed as a stream. Its rows are stored in short transactions of BATCH rows (the parse of
    the next batch runs outside any transaction), so other writers (logins, chats, usage records) get a turn
    during a large upload, yet they stay hidden from every reader (see Dataset.upload_from) until the whole
    file has been read and checked; then one single-row UPDATE makes them the dataset's. A problem anywhere
    (CsvProblem, any other error) deletes the rows stored so far, so the dataset is exactly what it was; if
    the process dies instead, its rows stay hidden and the next upload into the dataset deletes them.
    One upload into a dataset at a time: a second one meanwhile is refused (UploadRefused). Call it outside
    any transaction: inside one, the batches would be savepoints of a single long transaction again.
    """
    token = uuid.uuid4().hex
    start = _upload_begin(dataset, token)
    table = connection.ops.quote_name(Prompt._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in ("dataset_id", "position", "source_line", "text"))
    sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s)"
    count = 0
    try:
        _rows_delete(dataset, token, start=start)  # what an upload that died left, if one did
        rows = prompts_read(path, ignored=ignored)
        while batch := [
            (dataset.pk, start + count + n, row.line, row.prompt) for n, row in enumerate(islice(rows, BATCH))
        ]:
            with transaction.atomic():
                _upload_alive(dataset, token)
                with connection.cursor() as cursor:
                    cursor.executemany(sql, batch)
            count += len(batch)
        # The whole file was accepted: its rows become the dataset's at once.
        if not Dataset.objects.filter(pk=dataset.pk, upload_token=token).update(
            upload_from=None, upload_token="", upload_seen_at=None
        ):
            raise UploadRefused(UPLOAD_LOST)
    except BaseException:
        _upload_discard(dataset, token, start=start)
        raise
    return count


def _upload_begin(dataset: Dataset, token: str) -> int:
    """Take the dataset's upload slot (unless a live upload holds it); returns the position of the first prompt.

    The slot of an upload not heard from within UPLOAD_LEASE is taken over, and its rows (from its
    `upload_from` on) are then deleted and their positions reused.
    """
    now = timezone.now()
    with transaction.atomic():
        row = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if dataset_uploading(row):
            raise UploadRefused("another file is being added to this dataset; try again when it has finished")
        if row.upload_from is not None:
            logger.warning("dataset %s: an upload died; its rows from position %s go", dataset.pk, row.upload_from)
            start = row.upload_from
        else:
            start = (Prompt.stored.filter(dataset=dataset).aggregate(last=Max("position"))["last"] or 0) + 1
        Dataset.objects.filter(pk=dataset.pk).update(upload_from=start, upload_token=token, upload_seen_at=now)
    return start


def _upload_alive(dataset: Dataset, token: str) -> None:
    """Renew the upload's slot (inside each batch's transaction); stop if it was taken over or the dataset deleted."""
    if not Dataset.objects.filter(pk=dataset.pk, upload_token=token).update(upload_seen_at=timezone.now()):
        raise UploadRefused(UPLOAD_LOST)


def _rows_delete(dataset: Dataset, token: str, *, start: int) -> None:
    """Delete the dataset's rows from position `start` on, in short transactions, while `token` holds its slot."""
    last = Prompt.stored.filter(dataset=dataset, position__gte=start).aggregate(last=Max("position"))["last"]
    if last is None:
        return
    table = connection.ops.quote_name(Prompt._meta.db_table)
    dataset_col, position_col = (connection.ops.quote_name(c) for c in ("dataset_id", "position"))
    sql = f"DELETE FROM {table} WHERE {dataset_col} = %s AND {position_col} >= %s AND {position_col} < %s"
    for low in range(start, last + 1, DISCARD_BATCH):
        with transaction.atomic():
            _upload_alive(dataset, token)
            with connection.cursor() as cursor:
                cursor.execute(sql, [dataset.pk, low, low + DISCARD_BATCH])


def _upload_discard(dataset: Dataset, token: str, *, start: int) -> None:
    """After a failed upload: delete what it stored and free the slot. Should that fail too (the database
    gone), the rows stay hidden (`upload_from` stays) and the next upload into the dataset removes them."""
    try:
        _rows_delete(dataset, token, start=start)
        with transaction.atomic():
            left = Prompt.stored.filter(dataset=dataset, position__gte=start).exists()
            Dataset.objects.filter(pk=dataset.pk, upload_token=token).update(
                upload_token="", upload_seen_at=None, **({} if left else {"upload_from": None})
            )
    except UploadRefused:
        pass  # another upload took the slot over: it removes these rows
    except Exception:
        logger.exception("dataset %s: could not remove a failed upload's rows; the next upload will", dataset.pk)


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


def jobs_clear(*, project: Project) -> int:
    """Remove every Completed or Failed job of the project, and only those."""
    jobs = BulkJob.objects.filter(project=project, status__in=BulkJob.CLEARABLE)
    count = jobs.count()
    jobs.delete()
    return count


def jobs_with_progress(jobs: QuerySet[BulkJob]) -> QuerySet[BulkJob]:
    """The jobs with their done and failed counts, newest first (an aggregate drops Meta.ordering)."""
    counted = jobs.select_related("dataset").annotate(
        done_count=Count("items", filter=Q(items__state=BulkItem.State.DONE)),
        failed_count=Count("items", filter=Q(items__state=BulkItem.State.FAILED)),
    )
    return counted.order_by("-created_at", "-pk")


def job_retry_label(job: BulkJob) -> str:
    """What running a job's unfinished prompts again is called: a cancelled job is resumed (its prompts never
    run go too), a failed one has its failures retried; '' when neither applies."""
    if job.status == BulkJob.Status.CANCELLED:
        return "Resume"
    return "Retry failed" if job.status == BulkJob.Status.FAILED else ""


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


RESULT_FIELDS = (
    "prompt__position",
    "prompt__text",
    "text",
    "state",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "error",
)


def result_batch(job: BulkJob, *, after: int, size: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """The job's next `size` (RESULT_BATCH) results after prompt position `after`, in prompt order, as dicts of
    RESULT_FIELDS (claims in flight are not results), and the position to go on after (None: no more).

    Keyset pagination with one query per batch: a range of the prompts' (dataset, position) index, in order,
    each prompt's result found by the (job, prompt) index, so every batch costs the same however far into a
    million-row job it is, and no model instances are built.
    """
    size = size or RESULT_BATCH
    rows = list(
        BulkItem.objects.filter(
            job=job,
            prompt__dataset_id=job.dataset_id,  # lets the database walk the prompts' index in position order
            prompt__position__gt=after,
            prompt__position__lte=job.last_position,
        )
        .exclude(state=BulkItem.State.CLAIMED)
        .order_by("prompt__position")
        .values(*RESULT_FIELDS)[:size]
    )
    return rows, rows[-1]["prompt__position"] if len(rows) == size else None


@dataclass(frozen=True)
class ResultRow:
    """One prompt of a job and what became of it, for the results view."""

    position: int
    prompt: str
    state: str  # a BulkItem.State, or "" for a prompt not run (yet)
    reply: str = ""
    error: str = ""
    finish_reason: str = ""
    completion_tokens: int = 0
    latency_ms: float | None = None


@dataclass(frozen=True)
class ResultPage:
    rows: list[ResultRow]
    before: int | None  # the first position shown, when there are prompts before it (the previous page's cursor)
    after: int | None  # the last position shown, when there are prompts after it (the next page's cursor)


_ITEM_FIELDS = ("state", "text", "error", "finish_reason", "completion_tokens", "latency_ms")


def _result_row(position: int, prompt: str, item: dict[str, Any] | None) -> ResultRow:
    if item is None:
        return ResultRow(position=position, prompt=prompt, state="")
    return ResultRow(
        position=position,
        prompt=prompt,
        state=item["state"],
        reply=item["text"],
        error=item["error"],
        finish_reason=item["finish_reason"],
        completion_tokens=item["completion_tokens"],
        latency_ms=item["latency_ms"],
    )


def job_results_page(
    job: BulkJob, *, after: int = 0, before: int | None = None, failed_only: bool = False, size: int | None = None
) -> ResultPage:
    """A page of the job's prompts in order, each with its reply or error (or none yet): the `size` after
    position `after`, or, given `before`, the `size` before that position. `failed_only`: the failed ones only.

    Keyset pages, as result_batch: a page costs a few indexed queries however deep into a large job it is.
    """
    size = size or RESULTS_PAGE
    fields: tuple[str, ...]
    if failed_only:
        scope: QuerySet[Any] = BulkItem.objects.filter(
            job=job, state=BulkItem.State.FAILED, prompt__dataset_id=job.dataset_id
        )
        key, fields = "prompt__position", ("prompt__position", "prompt__text", *_ITEM_FIELDS)
    else:
        scope = Prompt.objects.filter(dataset_id=job.dataset_id, position__lte=job.last_position)
        key, fields = "position", ("pk", "position", "text")
    if before is not None:
        page = list(scope.filter(**{f"{key}__lt": before}).order_by(f"-{key}").values(*fields)[:size])[::-1]
    else:
        page = list(scope.filter(**{f"{key}__gt": after}).order_by(key).values(*fields)[:size])
    if not page:
        return ResultPage(rows=[], before=None, after=None)
    if failed_only:
        rows = [_result_row(row["prompt__position"], row["prompt__text"], row) for row in page]
    else:
        items = {
            row["prompt_id"]: row
            for row in BulkItem.objects.filter(job=job, prompt_id__in=[p["pk"] for p in page]).values(
                "prompt_id", *_ITEM_FIELDS
            )
        }
        rows = [_result_row(row["position"], row["text"], items.get(row["pk"])) for row in page]
    first, last = rows[0].position, rows[-1].position
    return ResultPage(
        rows=rows,
        before=first if scope.filter(**{f"{key}__lt": first}).exists() else None,
        after=last if scope.filter(**{f"{key}__gt": last}).exists() else None,
    )
