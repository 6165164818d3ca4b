"""Starting jobs from a dataset, and Async History: progress, delete, Clear All, ownership.

Downloading the results: test_download.py."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.bulk.models import BulkItem, BulkJob

pytestmark = pytest.mark.django_db


def make_job(user, dataset, status: str = "queued", **fields) -> BulkJob:  # noqa: ANN001
    return BulkJob.objects.create(
        user=user,
        dataset=dataset,
        model_id="fake-chat",
        status=status,
        total=dataset.prompts.count(),
        last_position=dataset.prompts.count(),
        **fields,
    )


def result(job: BulkJob, position: int, state: str = "done", **fields) -> BulkItem:
    prompt = job.dataset.prompts.get(position=position)
    return BulkItem.objects.create(
        job=job,
        prompt=prompt,
        state=state,
        worker="w",
        lease_until=timezone.now(),
        finished_at=timezone.now(),
        **fields,
    )


def test_starting_a_job_queues_it_and_goes_to_history(client, user, fake_pool, make_dataset):
    dataset = make_dataset(user, ["a", "b"])
    client.force_login(user)
    page = client.get(reverse("bulk:dataset", args=[dataset.pk]) + "?model=fake-completion")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'value="fake-completion" selected' in body and "Temperature" in body and "Start job" in body
    response = client.post(
        reverse("bulk:dataset", args=[dataset.pk]),
        {"model": "fake-chat", "system_prompt": "Be brief.", "temperature": "0.4", "max_tokens": "16", "seed": "5"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("bulk:history")
    job = BulkJob.objects.get(user=user)
    assert (job.status, job.total, job.model_id, job.system_prompt) == ("queued", 2, "fake-chat", "Be brief.")
    assert job.params["temperature"] == 0.4 and job.params["max_tokens"] == 16 and job.params["seed"] == 5


def test_out_of_range_parameters_are_refused_with_a_message_and_no_job(client, user, fake_pool, make_dataset):
    dataset = make_dataset(user, ["a"])
    client.force_login(user)
    response = client.post(reverse("bulk:dataset", args=[dataset.pk]), {"model": "fake-chat", "temperature": "5"})
    assert response.status_code == 400
    assert "temperature must be a number from 0 to 2 (got 5)" in response.content.decode()
    response = client.post(reverse("bulk:dataset", args=[dataset.pk]), {"model": "fake-embed"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not BulkJob.objects.exists()


def test_an_empty_dataset_cannot_start_a_job(client, user, fake_pool, make_dataset):
    dataset = make_dataset(user, [])
    client.force_login(user)
    response = client.post(reverse("bulk:dataset", args=[dataset.pk]), {"model": "fake-chat"})
    assert response.status_code == 400 and "has no prompts yet" in response.content.decode()


def test_history_shows_progress_and_enables_download_and_delete_only_when_finished(
    client, user, fake_pool, make_dataset
):
    dataset = make_dataset(user, ["a", "b", "c", "d"])
    running = make_job(user, dataset, "processing", started_at=timezone.now())
    result(running, 1)
    result(running, 2, "failed", error="boom")
    done = make_job(user, dataset, "completed")
    client.force_login(user)
    body = client.get(reverse("bulk:history")).content.decode()
    assert "2 done" not in body and "1 done · 1 failed · 4 total" in body
    row = body[body.index(f'data-job="{running.pk}"') :]
    row = row[: row.index("</tr>")]
    assert 'aria-disabled="true"' in row and 'data-action="delete" disabled' in row
    row = body[body.index(f'data-job="{done.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "aria-disabled" not in row and 'data-action="delete">' in row

    jobs = {j["id"]: j for j in client.get(reverse("bulk:history_json")).json()["jobs"]}
    assert jobs[running.pk] | {"eta_seconds": None} == jobs[running.pk] | {
        "status": "processing",
        "done": 1,
        "failed": 1,
        "total": 4,
        "percent": 50,
        "downloadable": False,
        "cancellable": True,
        "eta_seconds": None,
    }
    assert jobs[running.pk]["eta_seconds"] is not None  # from this run's pace
    assert jobs[done.pk]["downloadable"] is True and jobs[done.pk]["cancellable"] is False

    # Neither download nor delete works on the running job, whatever the page shows.
    assert client.get(reverse("bulk:download", args=[running.pk, "csv"])).status_code == 302
    client.post(reverse("bulk:delete", args=[running.pk]))
    assert BulkJob.objects.filter(pk=running.pk).exists()
    client.post(reverse("bulk:delete", args=[done.pk]))
    assert not BulkJob.objects.filter(pk=done.pk).exists()


def test_clear_all_removes_completed_and_failed_jobs_only(client, user, other_user, fake_pool, make_dataset):
    dataset = make_dataset(user, ["a"])
    jobs = {s: make_job(user, dataset, s) for s in ("queued", "processing", "completed", "failed", "cancelled")}
    theirs = make_job(other_user, make_dataset(other_user, ["x"], name="Theirs"), "completed")
    client.force_login(user)
    response = client.post(reverse("bulk:clear"))
    assert response.status_code == 302
    assert set(BulkJob.objects.filter(user=user).values_list("status", flat=True)) == {
        "queued",
        "processing",
        "cancelled",
    }
    assert BulkJob.objects.filter(pk=theirs.pk).exists()
    assert "Cleared 2 completed or failed jobs." in client.get(reverse("bulk:history")).content.decode()
    assert not BulkJob.objects.filter(pk__in=[jobs["completed"].pk, jobs["failed"].pk]).exists()


def test_cancel_then_resume_from_history(client, user, fake_pool, make_dataset):
    dataset = make_dataset(user, ["a", "b"])
    job = make_job(user, dataset, "processing")
    client.force_login(user)
    client.post(reverse("bulk:cancel", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished_at
    result(job, 1)
    body = client.get(reverse("bulk:history")).content.decode()
    assert re.search(r'data-action="retry">Resume</button>', body)  # not "Retry failed": nothing failed
    assert client.get(reverse("bulk:history_json")).json()["jobs"][0]["retry_label"] == "Resume"
    client.post(reverse("bulk:retry", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == "queued"
    assert "Resumed: 1 prompt queued." in client.get(reverse("bulk:history")).content.decode()


def test_a_job_with_failures_offers_retry_failed(client, user, fake_pool, make_dataset):
    job = make_job(user, make_dataset(user, ["a", "b"]), "failed")
    result(job, 1)
    result(job, 2, state="failed", error="timeout")
    client.force_login(user)
    body = client.get(reverse("bulk:history")).content.decode()
    assert re.search(r'data-action="retry">Retry failed</button>', body)
    (row,) = client.get(reverse("bulk:history_json")).json()["jobs"]
    assert row["retryable"] and row["retry_label"] == "Retry failed"
    client.post(reverse("bulk:retry", args=[job.pk]))
    assert "Queued 1 prompt again." in client.get(reverse("bulk:history")).content.decode()


def test_a_completed_job_offers_neither(client, user, fake_pool, make_dataset):
    job = make_job(user, make_dataset(user, ["a"]), "completed")
    result(job, 1)
    client.force_login(user)
    assert re.search(r'data-action="retry" hidden>', client.get(reverse("bulk:history")).content.decode())
    assert not client.get(reverse("bulk:history_json")).json()["jobs"][0]["retryable"]


def test_history_shows_the_newest_job_first(client, user, fake_pool, make_dataset):
    dataset = make_dataset(user, ["a"])
    old, new = make_job(user, dataset, "completed"), make_job(user, dataset, "completed")
    BulkJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    client.force_login(user)
    body = client.get(reverse("bulk:history")).content.decode()
    assert body.index(f'data-job="{new.pk}"') < body.index(f'data-job="{old.pk}"')
    assert [j["id"] for j in client.get(reverse("bulk:history_json")).json()["jobs"]] == [new.pk, old.pk]


def test_delete_and_clear_all_ask_first(client, user, fake_pool, make_dataset):
    make_job(user, make_dataset(user, ["a"]), "completed")
    client.force_login(user)
    body = client.get(reverse("bulk:history")).content.decode()
    # site.js asks these questions in a dialog before the form is sent (no inline script: the CSP forbids them)
    assert re.search(r'action="/bulk/history/clear/" class="inline" data-confirm-dialog="Remove every', body)
    assert re.search(r'action="/bulk/jobs/\d+/delete/" class="inline" data-confirm-dialog="Delete this job', body)


def test_jobs_belong_to_their_owner(client, user, other_user, fake_pool, make_dataset):
    theirs = make_job(other_user, make_dataset(other_user, ["secret prompt"], name="Theirs"), "completed")
    result(theirs, 1, text="secret answer")
    client.force_login(user)
    assert "Theirs" not in client.get(reverse("bulk:history")).content.decode()
    assert client.get(reverse("bulk:history_json")).json() == {"jobs": []}
    assert client.get(reverse("bulk:download", args=[theirs.pk, "csv"])).status_code == 404
    for action in ("cancel", "retry", "delete"):
        assert client.post(reverse(f"bulk:{action}", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("bulk:dataset", args=[theirs.dataset.pk]), {"model": "fake-chat"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "completed"


def test_history_needs_a_login(client):
    assert client.get(reverse("bulk:history")).status_code == 302
    assert client.get(reverse("bulk:history_json")).status_code == 302
