from __future__ import annotations

import tempfile
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from playground.bulk.csvfile import MAX_BYTES, CsvProblem
from playground.bulk.forms import UploadForm
from playground.bulk.models import Dataset
from playground.bulk.services import dataset_create, dataset_upload


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


@login_required
@require_GET
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id, user=request.user)
    context = {"dataset": dataset, "count": dataset.prompts.count(), "prompts": dataset.prompts.all()[:50]}
    return render(request, "bulk/dataset.html", context)
