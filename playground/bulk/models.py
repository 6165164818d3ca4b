from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from playground.projects.models import personal_project_id


class Dataset(models.Model):
    """A named set of prompts a user uploads (one CSV or several) and runs bulk jobs over."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets")
    # The project it belongs to (the user above is who did it). Nullable only for the migration that filled it: save()
    # fills it when the caller names none.
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="datasets"
    )
    project_id: int | None  # its column, for type checking
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    # The upload in progress, if any (services.dataset_upload): its prompts are stored in short batches from
    # position `upload_from` on, and are not the dataset's (every query through Prompt.objects leaves them out)
    # until the whole file is accepted and `upload_from` goes back to null. One that died (its process killed)
    # leaves its rows hidden; the next upload into the dataset, once `upload_seen_at` is older than the lease,
    # deletes them and takes its place.
    upload_from = models.PositiveIntegerField(null=True, blank=True)
    upload_token = models.CharField(max_length=32, blank=True)
    upload_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="dataset_name_per_project")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.project_id is None:  # a caller that names no project: the user's personal project
            self.project_id = personal_project_id(self.user_id)
        super().save(*args, **kwargs)


class VisiblePrompts(models.Manager["Prompt"]):
    """A dataset's prompts: the rows of an upload not (yet) accepted are left out (see Dataset.upload_from).

    The default manager, so `Prompt.objects`, `dataset.prompts`, the admin and the worker's claims all read
    through it; deletion cascades use the base manager and so also remove hidden rows.
    """

    def get_queryset(self) -> models.QuerySet[Prompt]:
        return (
            super()
            .get_queryset()
            .filter(Q(dataset__upload_from__isnull=True) | Q(position__lt=F("dataset__upload_from")))
        )


class Prompt(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="prompts")
    position = models.PositiveIntegerField()  # order within the dataset, across uploads
    source_line = models.PositiveIntegerField()  # line in the uploaded file, for messages
    text = models.TextField()

    objects = VisiblePrompts()
    stored = models.Manager()  # every row, an upload's hidden ones included: for the upload itself only

    class Meta:
        ordering = ["dataset", "position"]
        constraints = [models.UniqueConstraint(fields=["dataset", "position"], name="one_prompt_per_position")]

    def __str__(self) -> str:
        return self.text[:60]


class BulkJob(models.Model):
    """One run of a dataset's prompts through a text model, processed by background workers."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"  # finished, but one or more prompts could not be processed
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
    CLEARABLE = (Status.COMPLETED, Status.FAILED)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bulk_jobs")
    # The project it belongs to (the user above is who did it). Nullable only for the migration that filled it: save()
    # fills it when the caller names none.
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="bulk_jobs"
    )
    project_id: int | None  # its column, for type checking
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="jobs")
    model_id = models.CharField(max_length=100)
    system_prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict)  # the sampling values as chosen (before the model's defaults)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField()  # prompts in the dataset when the job was created
    last_position = models.PositiveIntegerField()  # prompts added to the dataset later are not part of it
    task_ids = models.JSONField(default=list, blank=True)  # the background tasks last enqueued for it
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # a worker is alive on it while this is fresh
    error = models.TextField(blank=True)  # why the whole job stopped, if it did
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.dataset.name} · {self.model_id} · {self.status}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.project_id is None:  # no project named: the dataset's, else the personal one
            self.project_id = self.dataset.project_id or personal_project_id(self.user_id)
        super().save(*args, **kwargs)

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED


class BulkItem(models.Model):
    """One prompt of one job: claimed by a worker (with a lease), then its result.

    The unique (job, prompt) pair is what makes results exactly-once: a prompt is claimed by inserting
    its row, a worker that died leaves a claim whose lease runs out and is taken over, and a finished
    prompt's row is never written again.
    """

    class State(models.TextChoices):
        CLAIMED = "claimed", "Claimed"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices, default=State.CLAIMED)
    worker = models.CharField(max_length=64)
    lease_until = models.DateTimeField()
    text = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "prompt__position"]
        constraints = [models.UniqueConstraint(fields=["job", "prompt"], name="one_item_per_job_prompt")]
        indexes = [models.Index(fields=["job", "state"])]

    def __str__(self) -> str:
        return f"job {self.job_id} prompt {self.prompt_id}: {self.state}"
