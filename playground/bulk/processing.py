"""Running a bulk job: claim prompts, generate, store each result exactly once.

Any number of workers (threads or processes, on any machine sharing the database) may work on one job.
A worker claims a few prompts at a time by inserting their BulkItem rows (unique per job and prompt),
keeps its claims alive with a heartbeat, and writes each result onto its own claim. A worker that dies
(even `kill -9`) leaves claims whose lease runs out; whoever works on the job next takes them over.
A prompt's result is written only by the claim's holder and only once, so every prompt ends with
exactly one result. `stalled_jobs_resume` (run by every worker) re-enqueues a job nobody works on.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from inference import ChatMessage, Job
from inference.types import EngineError, QueueFullError, SamplingParams, TextChunk
from playground.bulk.models import BulkItem, BulkJob, Prompt
from playground.serving import run_all, sampling_params, text_stream
from playground.usage.services import Caller, metered_as

logger = logging.getLogger(__name__)

CLAIM_BATCH = 4  # prompts claimed at a time: few enough that a second worker finds work at once
QUEUE_FULL_WAIT = 1.0  # the model's queue is full of interactive requests: bulk waits its turn


def worker_name() -> str:
    """Unique per task run: which host and process holds a claim, and which run within it."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease() -> timedelta:
    return timedelta(seconds=settings.PLAYGROUND_BULK_LEASE)


class Heartbeat(threading.Thread):
    """Keeps this worker's claims and the job's heartbeat fresh; notices a cancel and stops generation."""

    def __init__(self, job_id: int, worker: str) -> None:
        super().__init__(name=f"bulk-heartbeat-{job_id}", daemon=True)
        self.job_id = job_id
        self.worker = worker
        self.stopped = threading.Event()  # the job was cancelled or deleted: stop work on it
        self.finished = threading.Event()  # the run is over: stop beating
        self.current: Job[TextChunk] | None = None

    def beat(self) -> None:
        now = timezone.now()
        alive = BulkJob.objects.filter(pk=self.job_id, status=BulkJob.Status.PROCESSING).update(heartbeat_at=now)
        BulkItem.objects.filter(job_id=self.job_id, worker=self.worker, state=BulkItem.State.CLAIMED).update(
            lease_until=now + lease()
        )
        if not alive:
            self.stop_work()

    def stop_work(self) -> None:
        self.stopped.set()
        current = self.current
        if current is not None:
            current.cancel()

    def run(self) -> None:
        interval = settings.PLAYGROUND_BULK_LEASE / 6
        try:
            while not self.finished.wait(interval):
                try:
                    self.beat()
                except Exception:  # a locked or briefly unreachable database: try again next beat
                    logger.exception("bulk heartbeat for job %s failed", self.job_id)
        finally:
            close_old_connections()


def job_process(job_id: int, *, worker: str | None = None) -> None:
    """Work on the job until no prompt is left to claim, then finish it (if no other worker still is)."""
    worker = worker or worker_name()
    now = timezone.now()
    started = BulkJob.objects.filter(pk=job_id, status__in=(BulkJob.Status.QUEUED, BulkJob.Status.PROCESSING)).update(
        status=BulkJob.Status.PROCESSING, heartbeat_at=now
    )
    if not started:
        return  # finished, cancelled or deleted meanwhile
    BulkJob.objects.filter(pk=job_id, started_at__isnull=True).update(started_at=now)
    job = BulkJob.objects.select_related("user").get(pk=job_id)
    try:
        params = sampling_params(model_id=job.model_id, overrides=job.params)
    except (EngineError, KeyError, TypeError, ValueError) as exc:
        _job_stop(job_id, f"the job's model or parameters are no longer valid: {exc}")
        return
    heartbeat = Heartbeat(job_id, worker)
    heartbeat.start()
    caller = Caller(user=job.user, project_id=job.project_id, source="bulk", endpoint="bulk")
    cursor = 0
    try:
        with metered_as(caller):
            while not heartbeat.stopped.is_set():
                items, cursor = _claim(job, worker, cursor)
                if not items:
                    if cursor:
                        cursor = 0  # one more pass from the start, for prompts released meanwhile
                        continue
                    if not _claimed_by_others(job, worker):
                        break
                    time.sleep(min(1.0, settings.PLAYGROUND_BULK_LEASE / 6))  # wait: finish or take them over
                    continue
                for item in items:
                    if heartbeat.stopped.is_set():
                        break
                    _run_one(job, item, params, worker, heartbeat)
        if not heartbeat.stopped.is_set():
            _job_finish(job_id)
    except Exception as exc:
        logger.exception("bulk job %s stopped", job_id)
        _job_stop(job_id, f"the worker stopped on an unexpected error: {exc}")
    finally:
        heartbeat.finished.set()
        heartbeat.join()
        # Claims this run still holds (a cancel, an error) are released for whoever resumes the job.
        BulkItem.objects.filter(job_id=job_id, worker=worker, state=BulkItem.State.CLAIMED).delete()


def _claim(job: BulkJob, worker: str, cursor: int) -> tuple[list[BulkItem], int]:
    """Claim up to CLAIM_BATCH prompts: expired claims first, then unclaimed prompts after `cursor`."""
    now = timezone.now()
    until = now + lease()
    expired = list(
        BulkItem.objects.filter(job=job, state=BulkItem.State.CLAIMED, lease_until__lt=now).values_list(
            "pk", flat=True
        )[:CLAIM_BATCH]
    )
    for pk in expired:  # a conditional update per claim: only one worker wins each
        BulkItem.objects.filter(pk=pk, state=BulkItem.State.CLAIMED, lease_until__lt=now).update(
            worker=worker, lease_until=until
        )
    wanted = CLAIM_BATCH - len(expired)
    if wanted > 0:
        free = (
            Prompt.objects.filter(dataset_id=job.dataset_id, position__gt=cursor, position__lte=job.last_position)
            .filter(~Exists(BulkItem.objects.filter(job=job, prompt=OuterRef("pk"))))
            .order_by("position")
            .values_list("pk", "position")[:wanted]
        )
        free = list(free)
        if free:
            cursor = free[-1][1]
            BulkItem.objects.bulk_create(
                [BulkItem(job=job, prompt_id=pk, worker=worker, lease_until=until) for pk, _ in free],
                ignore_conflicts=True,  # another worker claimed some of them first: they are its own
            )
    mine = BulkItem.objects.filter(job=job, worker=worker, state=BulkItem.State.CLAIMED).select_related("prompt")
    return list(mine.order_by("prompt__position")), cursor


def _claimed_by_others(job: BulkJob, worker: str) -> bool:
    return BulkItem.objects.filter(job=job, state=BulkItem.State.CLAIMED).exclude(worker=worker).exists()


def _run_one(job: BulkJob, item: BulkItem, params: SamplingParams, worker: str, heartbeat: Heartbeat) -> None:
    # A chat model gets the system prompt as its own message; a completion model continues the prompt
    # with the system prompt (if any) before it.
    messages: list[ChatMessage] = []
    if job.system_prompt:
        messages.append(ChatMessage("system", job.system_prompt))
    messages.append(ChatMessage("user", item.prompt.text))
    prompt = f"{job.system_prompt}\n\n{item.prompt.text}" if job.system_prompt else item.prompt.text
    started = time.monotonic()
    chunks: list[TextChunk] = []
    error = ""
    while True:
        try:
            generation = text_stream(
                model_id=job.model_id, params=params, messages=messages, prompt=prompt, background=True
            )
        except QueueFullError:
            if heartbeat.stopped.wait(QUEUE_FULL_WAIT):
                return
            continue
        except EngineError as exc:
            error = str(exc)
            break
        heartbeat.current = generation
        try:
            chunks = run_all(generation, stopped=heartbeat.stopped)  # the same time limit as any request
        except EngineError as exc:
            if getattr(exc, "code", "") == "upstream_unavailable":  # a remote model's servers are all down: wait
                if heartbeat.stopped.wait(QUEUE_FULL_WAIT):
                    return
                continue
            error = str(exc)
        finally:
            heartbeat.current = None
        break
    if heartbeat.stopped.is_set():
        return  # cancelled: the prompt is left unprocessed, not failed
    last = chunks[-1] if chunks else None
    fields: dict[str, Any] = {
        "latency_ms": (time.monotonic() - started) * 1000,
        "finished_at": timezone.now(),
    }
    if error or last is None or last.usage is None:
        fields.update(state=BulkItem.State.FAILED, error=error or "the model returned nothing")
    else:
        fields.update(
            state=BulkItem.State.DONE,
            text="".join(c.text for c in chunks),
            finish_reason=last.finish_reason or "",
            prompt_tokens=last.usage.prompt_tokens,
            completion_tokens=last.usage.completion_tokens,
        )
    # Only the claim's holder writes, and only once: a claim taken over meanwhile is not overwritten.
    BulkItem.objects.filter(pk=item.pk, worker=worker, state=BulkItem.State.CLAIMED).update(**fields)


def _job_finish(job_id: int) -> None:
    """Completed (or Failed if any prompt failed) once every prompt has its result."""
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().filter(pk=job_id, status=BulkJob.Status.PROCESSING).first()
        if job is None:
            return
        results = BulkItem.objects.filter(job=job).exclude(state=BulkItem.State.CLAIMED)
        if results.count() < job.total:
            return  # prompts still claimed elsewhere or unclaimed: the job goes on
        failed = results.filter(state=BulkItem.State.FAILED).exists()
        job.status = BulkJob.Status.FAILED if failed else BulkJob.Status.COMPLETED
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])


def _job_stop(job_id: int, error: str) -> None:
    BulkJob.objects.filter(pk=job_id, status__in=(BulkJob.Status.QUEUED, BulkJob.Status.PROCESSING)).update(
        status=BulkJob.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )
