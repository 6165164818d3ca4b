"""Datasets renamed and deleted from their page: deleting one deletes the jobs run over it with their results,
and is refused while one of them is queued or running; another user's dataset is a 404."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from playground.bulk import services
from playground.bulk.models import BulkItem, BulkJob, Dataset, Prompt
from tests.bulk.test_history import make_job, result

pytestmark = pytest.mark.django_db


def test_a_dataset_is_renamed(client, user, make_dataset):
    dataset = make_dataset(user, ["a"], name="Old name")
    client.force_login(user)
    response = client.post(reverse("bulk:dataset_rename", args=[dataset.pk]), {"name": "  New   name "})
    assert response.status_code == 302 and response["Location"] == reverse("bulk:dataset", args=[dataset.pk])
    dataset.refresh_from_db()
    assert dataset.name == "New name"
    assert "Renamed Old name to New name." in client.get(response["Location"]).content.decode()


def test_a_dataset_cannot_take_the_name_of_another_and_keeps_its_own(client, user, make_dataset):
    dataset = make_dataset(user, ["a"], name="Mine")
    make_dataset(user, ["b"], name="Taken")
    client.force_login(user)
    response = client.post(reverse("bulk:dataset_rename", args=[dataset.pk]), {"name": "Taken"}, follow=True)
    assert "Not renamed: the project already has a dataset named Taken." in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.name == "Mine"
    response = client.post(reverse("bulk:dataset_rename", args=[dataset.pk]), {"name": "   "}, follow=True)
    assert "Not renamed: This field is required." in response.content.decode()


def test_another_users_name_is_free(client, user, other_user, make_dataset):
    make_dataset(other_user, ["b"], name="Shared name")
    dataset = make_dataset(user, ["a"], name="Mine")
    assert services.dataset_rename(dataset=dataset, name="Shared name")


def test_deleting_a_dataset_deletes_its_prompts_and_its_finished_jobs_with_their_results(client, user, make_dataset):
    dataset = make_dataset(user, ["a", "b", "c"], name="Doomed")
    keep = make_dataset(user, ["x"], name="Kept")
    job = make_job(user, dataset, "completed")
    result(job, 1, text="answer")
    make_job(user, dataset, "cancelled")
    kept_job = make_job(user, keep, "completed")
    client.force_login(user)
    page = client.get(reverse("bulk:dataset", args=[dataset.pk])).content.decode()
    assert (
        'data-confirm-dialog="Delete the dataset “Doomed” with its 3 prompts and its 2 jobs and their results?' in page
    )
    response = client.post(reverse("bulk:dataset_delete", args=[dataset.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("bulk:index")
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    assert not Prompt.stored.filter(dataset_id=dataset.pk).exists()
    assert not BulkJob.objects.filter(dataset_id=dataset.pk).exists() and not BulkItem.objects.exists()
    assert BulkJob.objects.filter(pk=kept_job.pk).exists() and keep.prompts.count() == 1
    assert (
        "Deleted the dataset Doomed and its 2 jobs with their results."
        in client.get(reverse("bulk:index")).content.decode()
    )


@pytest.mark.parametrize("status", ["queued", "processing"])
def test_a_dataset_with_a_job_in_progress_is_not_deleted(client, user, make_dataset, status):
    dataset = make_dataset(user, ["a"], name="Busy")
    make_job(user, dataset, status)
    client.force_login(user)
    response = client.post(reverse("bulk:dataset_delete", args=[dataset.pk]), follow=True)
    assert "Not deleted: a job over this dataset is queued or running; cancel it first" in response.content.decode()
    assert Dataset.objects.filter(pk=dataset.pk).exists() and dataset.prompts.count() == 1


def test_a_large_dataset_goes_a_batch_at_a_time(monkeypatch, user, make_dataset):
    monkeypatch.setattr(services, "DISCARD_BATCH", 4)
    dataset = make_dataset(user, [f"p{n}" for n in range(10)])
    Prompt.stored.create(dataset=dataset, position=11, source_line=2, text="an upload's hidden row")
    with CaptureQueriesContext(connection) as queries:
        assert services.dataset_delete(dataset=dataset) == 0
    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "bulk_prompt"')]
    assert len(deletes) == 3  # positions below 4, 8 and 12: never the whole dataset in one statement
    assert not Prompt.stored.filter(dataset_id=dataset.pk).exists()
    assert not Dataset.objects.filter(pk=dataset.pk).exists()


def test_datasets_of_another_user_are_not_found(client, user, other_user, make_dataset):
    theirs = make_dataset(other_user, ["secret"], name="Theirs")
    client.force_login(user)
    assert client.post(reverse("bulk:dataset_rename", args=[theirs.pk]), {"name": "Mine now"}).status_code == 404
    assert client.post(reverse("bulk:dataset_delete", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Theirs" and theirs.prompts.count() == 1


def test_datasets_are_listed_newest_first(client, user, make_dataset):
    old = make_dataset(user, ["a"], name="Older")
    new = make_dataset(user, ["b"], name="Newer")
    Dataset.objects.filter(pk=old.pk).update(created_at=new.created_at.replace(year=new.created_at.year - 1))
    client.force_login(user)
    body = client.get(reverse("bulk:index")).content.decode()
    assert body.index("Newer") < body.index("Older")
