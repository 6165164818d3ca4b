from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inference.types import InvalidRequestError
from playground import engines
from playground.bulk.csvfile import MAX_BYTES, CsvProblem
from playground.bulk.forms import JobForm, UploadForm
from playground.bulk.models import BulkItem, BulkJob, Dataset
from playground.bulk.services import (
    dataset_create,
    dataset_upload,
    job_cancel,
    job_create,
    job_delete,
    job_progress,
    job_retry,
    jobs_clear,
    jobs_with_progress,
    result_rows,
)
from playground.catalog.forms import SamplingForm
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
    form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            form.add_error(
                "file", f"{upload.name}: the file is {upload.size / 1024 / 1024:.1f} MB; the limit is 500 MB"
            )
        else:
            path, remove = _on_disk(upload)
            dataset = form.cleaned_data["dataset"] or dataset_create(
                user=request.user, name=form.cleaned_data["new_name"]
            )
            try:
                added = dataset_upload(dataset=dataset, path=path)
            except CsvProblem as exc:
                form.add_error("file", f"{upload.name}: {exc}")
                if not dataset.prompts.exists():
                    dataset.delete()  # a new dataset whose only file was refused is not kept
            else:
                request.session["bulk_notice"] = f"Added {added} prompts from {upload.name} to {dataset.name}."
                return redirect("bulk:index")
            finally:
                if remove:
                    path.unlink(missing_ok=True)
    datasets = Dataset.objects.filter(user=request.user).annotate(prompt_count=Count("prompts"))
    context = {"form": form, "datasets": datasets, "notice": request.session.pop("bulk_notice", "")}
    return render(request, "bulk/index.html", context, status=400 if form.errors else 200)


def _text_models() -> list[tuple[str, str]]:
    return [(s.id, s.name) for s in engines.get_pool().specs.values() if s.task in TEXT_TASKS]


@login_required
@require_http_methods(["GET", "POST"])
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """The dataset's prompts, and the form that starts a job over them."""
    dataset = get_object_or_404(Dataset, pk=dataset_id, user=request.user)
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
        "prompts": dataset.prompts.all()[:50],
        "job_form": job_form,
        "params_form": params_form,
    }
    failed = data is not None and (job_form.errors or (params_form is not None and params_form.errors))
    return render(request, "bulk/dataset.html", context, status=400 if failed else 200)


def _user_jobs(request: HttpRequest) -> list[dict[str, object]]:
    rows = []
    for job in jobs_with_progress(BulkJob.objects.filter(user=request.user)):
        rows.append(
            {
                **job_progress(job),
                "dataset": job.dataset.name,
                "model": job.model_id,
                "created": job.created_at.isoformat(),
                "downloadable": job.finished,
                "cancellable": not job.finished,
                "retryable": job.status in (BulkJob.Status.FAILED, BulkJob.Status.CANCELLED),
            }
        )
    return rows


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """Async History: every job of the user, its live progress and what can be done with it."""
    jobs = list(jobs_with_progress(BulkJob.objects.filter(user=request.user)))
    rows = [(job, job_progress(job)) for job in jobs]
    return render(request, "bulk/history.html", {"rows": rows, "notice": request.session.pop("bulk_notice", "")})


@login_required
@require_GET
def history_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"jobs": _user_jobs(request)})


def _own_job(request: HttpRequest, job_id: int) -> BulkJob:
    return get_object_or_404(BulkJob, pk=job_id, user=request.user)


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
    count = job_retry(job)
    return _back(request, f"Queued {count} prompt{'s' if count != 1 else ''} again." if count else "Nothing to retry.")


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
    count = jobs_clear(user=request.user)
    return _back(request, f"Cleared {count} completed or failed job{'s' if count != 1 else ''}.")


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


def _result_dicts(job: BulkJob) -> Iterator[dict[str, object]]:
    for item in result_rows(job).iterator(chunk_size=500):
        yield {
            "position": item.prompt.position,
            "prompt": item.prompt.text,
            "response": item.text,
            "status": "ok" if item.state == BulkItem.State.DONE else "failed",
            "finish_reason": item.finish_reason,
            "prompt_tokens": item.prompt_tokens,
            "completion_tokens": item.completion_tokens,
            "latency_ms": round(item.latency_ms or 0, 1),
            "error": item.error,
        }


def _csv_lines(job: BulkJob) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for row in _result_dicts(job):
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _jsonl_lines(job: BulkJob) -> Iterator[str]:
    for row in _result_dicts(job):
        yield json.dumps(row, ensure_ascii=False) + "\n"


@login_required
@require_GET
def job_download(request: HttpRequest, job_id: int, fmt: str) -> HttpResponse:
    """Each prompt beside its response and details, streamed (CSV or JSONL); a finished job only."""
    if fmt not in ("csv", "jsonl"):
        raise Http404("results come as .csv or .jsonl")
    job = _own_job(request, job_id)
    if not job.finished:
        return _back(request, "Results can be downloaded when the job has finished.")
    lines, content_type = (_csv_lines(job), "text/csv") if fmt == "csv" else (_jsonl_lines(job), "application/jsonl")
    response = StreamingHttpResponse(lines, content_type=f"{content_type}; charset=utf-8")
    name = f"{slugify(job.dataset.name) or 'dataset'}-{job.model_id}-job{job.pk}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
