from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inference.types import InvalidRequestError
from playground import engines
from playground.bulk.csvfile import MAX_BYTES, CsvProblem
from playground.bulk.forms import DatasetRenameForm, JobForm, UploadForm
from playground.bulk.models import BulkItem, BulkJob, Dataset
from playground.bulk.services import (
    DatasetBusy,
    UploadRefused,
    dataset_create,
    dataset_delete,
    dataset_drop_if_empty,
    dataset_rename,
    dataset_upload,
    dataset_uploading,
    datasets_with_counts,
    job_cancel,
    job_create,
    job_delete,
    job_progress,
    job_results_page,
    job_retry,
    job_retry_label,
    jobs_clear,
    jobs_with_progress,
    result_batch,
)
from playground.catalog.forms import SamplingForm
from playground.projects.selectors import project_ids
from playground.projects.session import current_project
from playground.serving import TEXT_TASKS


def _on_disk(upload: UploadedFile) -> tuple[Path, bool]:
    """The upload's path on disk (Django streams big uploads to a temp file); small ones are written out."""
    if hasattr(upload, "temporary_file_path"):
        return Path(upload.temporary_file_path()), False
    handle = tempfile.NamedTemporaryFile(suffix=".csv", delete=False)  # noqa: SIM115  (removed by the caller)
    with handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    return Path(handle.name), True


@login_required
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    project = current_project(request)
    form = UploadForm(request.POST or None, request.FILES or None, project=project)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            form.add_error(
                "file", f"{upload.name}: the file is {upload.size / 1024 / 1024:.1f} MB; the limit is 500 MB"
            )
        else:
            path, remove = _on_disk(upload)
            dataset = form.cleaned_data["dataset"] or dataset_create(
                user=request.user, project=project, name=form.cleaned_data["new_name"]
            )
            ignored: list[str] = []
            try:
                added = dataset_upload(dataset=dataset, path=path, ignored=ignored)
            except (CsvProblem, UploadRefused) as exc:
                form.add_error("file", f"{upload.name}: {exc}")
                dataset_drop_if_empty(dataset)  # a new dataset whose only file was refused is not kept
            else:
                notice = f"Added {added} prompts from {upload.name} to {dataset.name}."
                if ignored:
                    notice += f" Only the 'prompts' column was read; ignored: {', '.join(ignored)}."
                request.session["bulk_notice"] = notice
                return redirect("bulk:index")
            finally:
                if remove:
                    path.unlink(missing_ok=True)
    datasets = datasets_with_counts(project=project)
    context = {"form": form, "datasets": datasets, "project": project, "notice": request.session.pop("bulk_notice", "")}
    return render(request, "bulk/index.html", context, status=400 if form.errors else 200)


def _dataset(request: HttpRequest, dataset_id: int) -> Dataset:
    """A dataset of one of the user's projects (any member may use it); a non-member: 404."""
    return get_object_or_404(Dataset, pk=dataset_id, project__in=project_ids(user=request.user))


def _text_models() -> list[tuple[str, str]]:
    return [(s.id, s.name) for s in engines.get_pool().specs.values() if s.task in TEXT_TASKS]


@login_required
@require_http_methods(["GET", "POST"])
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """The dataset's prompts, and the form that starts a job over them."""
    dataset = _dataset(request, dataset_id)
    models = _text_models()
    pool = engines.get_pool()
    data = request.POST if request.method == "POST" else None
    chosen = (data or request.GET).get("model") or ""
    if chosen not in dict(models):
        chosen = models[0][0] if models else ""
    job_form = JobForm(data, models=models, initial={"model": chosen})
    params_form = SamplingForm(data, spec=pool.spec(chosen)) if chosen else None
    if data is not None and job_form.is_valid() and params_form is not None and params_form.is_valid():
        try:
            job_create(
                user=request.user,
                dataset=dataset,
                model_id=job_form.cleaned_data["model"],
                system_prompt=job_form.cleaned_data["system_prompt"],
                params=params_form.as_query(),
            )
        except InvalidRequestError as exc:
            job_form.add_error(None, str(exc))
        else:
            return redirect("bulk:history")
    context = {
        "dataset": dataset,
        "count": dataset.prompts.count(),
        "jobs": dataset.jobs.count(),
        "uploading": dataset_uploading(dataset),
        "prompts": dataset.prompts.all()[:50],
        "job_form": job_form,
        "params_form": params_form,
        "rename_form": DatasetRenameForm(initial={"name": dataset.name}),
        "notice": request.session.pop("bulk_notice", ""),
    }
    failed = data is not None and (job_form.errors or (params_form is not None and params_form.errors))
    return render(request, "bulk/dataset.html", context, status=400 if failed else 200)


def _dataset_page(request: HttpRequest, dataset: Dataset, notice: str) -> HttpResponse:
    request.session["bulk_notice"] = notice
    return redirect("bulk:dataset", dataset.pk)


@login_required
@require_POST
def dataset_rename_view(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    form = DatasetRenameForm(request.POST)
    if not form.is_valid():
        return _dataset_page(request, dataset, "Not renamed: " + " ".join(form.errors["name"]))
    old, name = dataset.name, form.cleaned_data["name"]
    if not dataset_rename(dataset=dataset, name=name):
        return _dataset_page(request, dataset, f"Not renamed: the project already has a dataset named {name}.")
    return _dataset_page(request, dataset, f"Renamed {old} to {dataset.name}.")


@login_required
@require_POST
def dataset_delete_view(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = _dataset(request, dataset_id)
    try:
        jobs = dataset_delete(dataset=dataset)
    except DatasetBusy as exc:
        return _dataset_page(request, dataset, f"Not deleted: {exc}.")
    request.session["bulk_notice"] = f"Deleted the dataset {dataset.name}" + (
        f" and its {jobs} job{'s' if jobs != 1 else ''} with their results." if jobs else "."
    )
    return redirect("bulk:index")


def _user_jobs(request: HttpRequest) -> list[dict[str, object]]:
    rows = []
    for job in jobs_with_progress(BulkJob.objects.filter(project=current_project(request))):
        rows.append(
            {
                **job_progress(job),
                "dataset": job.dataset.name,
                "model": job.model_id,
                "created": job.created_at.isoformat(),
                "downloadable": job.finished,
                "cancellable": not job.finished,
                "retryable": bool(job_retry_label(job)),
                "retry_label": job_retry_label(job) or "Retry failed",
            }
        )
    return rows


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """Async History: every job of the current project, its live progress and what can be done with it."""
    jobs = list(jobs_with_progress(BulkJob.objects.filter(project=current_project(request))))
    rows = [(job, {**job_progress(job), "retry_label": job_retry_label(job)}) for job in jobs]
    return render(request, "bulk/history.html", {"rows": rows, "notice": request.session.pop("bulk_notice", "")})


@login_required
@require_GET
def history_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"jobs": _user_jobs(request)})


def _own_job(request: HttpRequest, job_id: int) -> BulkJob:
    """A job of one of the user's projects (any member may act on it); a non-member: 404."""
    return get_object_or_404(BulkJob, pk=job_id, project__in=project_ids(user=request.user))


def _back(request: HttpRequest, notice: str) -> HttpResponse:
    request.session["bulk_notice"] = notice
    return redirect("bulk:history")


@login_required
@require_POST
def job_cancel_view(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _own_job(request, job_id)
    return _back(request, "Job cancelled." if job_cancel(job) else "The job had already finished.")


@login_required
@require_POST
def job_retry_view(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _own_job(request, job_id)
    resume = job.status == BulkJob.Status.CANCELLED
    count = job_retry(job)
    prompts = f"{count} prompt{'s' if count != 1 else ''}"
    if not count:
        return _back(request, "Nothing to resume." if resume else "Nothing to retry.")
    return _back(request, f"Resumed: {prompts} queued." if resume else f"Queued {prompts} again.")


@login_required
@require_POST
def job_delete_view(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _own_job(request, job_id)
    if not job_delete(job):
        return _back(request, "Only a finished job can be deleted; cancel it first.")
    return _back(request, "Job deleted.")


@login_required
@require_POST
def jobs_clear_view(request: HttpRequest) -> HttpResponse:
    count = jobs_clear(project=current_project(request))
    return _back(request, f"Cleared {count} completed or failed job{'s' if count != 1 else ''}.")


@login_required
@require_GET
def job_results(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job's prompts a page at a time, each with its reply, or its error, or nothing yet (results so far
    while it runs); `?show=failed` lists the failed ones only; `?after=` / `?before=` page by position."""
    job = _own_job(request, job_id)
    failed_only = request.GET.get("show") == "failed"
    after, before = _position(request.GET.get("after")) or 0, _position(request.GET.get("before"))
    page = job_results_page(job, after=after, before=before, failed_only=failed_only)
    context = {"job": job, "progress": job_progress(job), "page": page, "failed_only": failed_only}
    return render(request, "bulk/results.html", context)


def _position(value: str | None) -> int | None:
    """A page cursor from the query string; anything but a small non-negative integer is no cursor."""
    return int(value) if value and value.isdecimal() and len(value) < 12 else None


CSV_COLUMNS = [
    "position",
    "prompt",
    "response",
    "status",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "error",
]


def _result_dict(row: dict[str, Any]) -> dict[str, object]:
    """One result (a row of services.RESULT_FIELDS) as the download's columns."""
    return {
        "position": row["prompt__position"],
        "prompt": row["prompt__text"],
        "response": row["text"],
        "status": "ok" if row["state"] == BulkItem.State.DONE else "failed",
        "finish_reason": row["finish_reason"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "latency_ms": round(row["latency_ms"] or 0, 1),
        "error": row["error"],
    }


def _csv_header() -> str:
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=CSV_COLUMNS).writeheader()
    return buffer.getvalue()


def _csv_batch(job: BulkJob, after: int) -> tuple[str, int | None]:
    rows, after_next = result_batch(job, after=after)
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=CSV_COLUMNS).writerows(_result_dict(row) for row in rows)
    return buffer.getvalue(), after_next


def _jsonl_batch(job: BulkJob, after: int) -> tuple[str, int | None]:
    rows, after_next = result_batch(job, after=after)
    return "".join(json.dumps(_result_dict(row), ensure_ascii=False) + "\n" for row in rows), after_next


async def _results_stream(
    job: BulkJob, head: str, batch: Callable[[BulkJob, int], tuple[str, int | None]]
) -> AsyncIterator[str]:
    """The download's body as an async iterator, so that Django under ASGI sends each piece as it comes (a sync
    iterator it would read whole first). The head goes out at once; then one batch of results at a time, read
    and formatted off the event loop (sync_to_async), so memory stays flat however many rows the job has."""
    if head:
        yield head
    after: int | None = 0
    while after is not None:
        text, after = await sync_to_async(batch)(job, after)
        if text:
            yield text


@login_required
@require_GET
def job_download(request: HttpRequest, job_id: int, fmt: str) -> HttpResponse:
    """Each prompt beside its response and details, streamed (CSV or JSONL); a finished job only."""
    if fmt not in ("csv", "jsonl"):
        raise Http404("results come as .csv or .jsonl")
    job = _own_job(request, job_id)
    if not job.finished:
        return _back(request, "Results can be downloaded when the job has finished.")
    if fmt == "csv":
        body, content_type = _results_stream(job, _csv_header(), _csv_batch), "text/csv"
    else:
        body, content_type = _results_stream(job, "", _jsonl_batch), "application/jsonl"
    response = StreamingHttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    name = f"{slugify(job.dataset.name) or 'dataset'}-{job.model_id}-job{job.pk}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
