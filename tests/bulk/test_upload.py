"""Bulk Prompts upload: datasets per user, whole-file validation with a message naming file and place, and large
files stored in short transactions that show in the dataset only once the whole file is accepted."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from playground.bulk import services
from playground.bulk.csvfile import CsvProblem
from playground.bulk.models import BulkItem, Dataset, Prompt
from playground.bulk.processing import job_process

pytestmark = pytest.mark.django_db


def csv_file(data: bytes, name: str = "prompts.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_upload_into_a_new_dataset_then_append_to_it(client, user):
    client.force_login(user)
    response = client.post(reverse("bulk:index"), {"new_name": "Questions", "file": csv_file(b'prompts\nHi\n"A, B"\n')})
    assert response.status_code == 302
    dataset = Dataset.objects.get(user=user, name="Questions")
    assert list(dataset.prompts.values_list("text", flat=True)) == ["Hi", "A, B"]
    client.post(reverse("bulk:index"), {"dataset": dataset.pk, "file": csv_file(b"prompts\nMore\n")})
    assert [(p.position, p.text, p.source_line) for p in dataset.prompts.all()] == [
        (1, "Hi", 2),
        (2, "A, B", 3),
        (3, "More", 2),
    ]
    body = client.get(reverse("bulk:index")).content.decode()
    assert "Questions" in body and '<td data-label="Prompts">3</td>' in body


def test_a_bad_file_is_refused_naming_file_and_line_and_nothing_stored_is_lost(client, user):
    client.force_login(user)
    client.post(reverse("bulk:index"), {"new_name": "Keep", "file": csv_file(b"prompts\nOne\n")})
    dataset = Dataset.objects.get(name="Keep")
    response = client.post(
        reverse("bulk:index"), {"dataset": dataset.pk, "file": csv_file(b"prompts\nTwo\n\n", name="bad.csv")}
    )
    assert response.status_code == 400
    assert "bad.csv: line 3: blank prompt" in response.content.decode()
    assert list(dataset.prompts.values_list("text", flat=True)) == ["One"]
    response = client.post(reverse("bulk:index"), {"new_name": "Fresh", "file": csv_file(b"prompt\nx\n")})
    assert "found &#x27;prompt&#x27;" in response.content.decode()
    assert not Dataset.objects.filter(name="Fresh").exists()  # a new dataset whose file was refused is not kept


def test_a_spreadsheet_csv_with_an_id_column_gives_its_prompts_and_says_what_was_ignored(client, user):
    client.force_login(user)
    data = b'id,prompts,notes\n1,Hi,first\n2,"A, B",\n'
    response = client.post(reverse("bulk:index"), {"new_name": "Sheet", "file": csv_file(data, name="sheet.csv")})
    assert response.status_code == 302
    assert list(Dataset.objects.get(name="Sheet").prompts.values_list("text", flat=True)) == ["Hi", "A, B"]
    body = client.get(reverse("bulk:index")).content.decode()
    assert (
        "Added 2 prompts from sheet.csv to Sheet. Only the &#x27;prompts&#x27; column was read; ignored: "
        "&#x27;id&#x27;, &#x27;notes&#x27;."
    ) in body


def test_a_dataset_must_be_chosen_or_named(client, user):
    client.force_login(user)
    response = client.post(reverse("bulk:index"), {"file": csv_file(b"prompts\nx\n")})
    assert response.status_code == 400 and "Choose a dataset or name a new one." in response.content.decode()


def test_datasets_belong_to_their_owner(client, user, other_user):
    theirs = Dataset.objects.create(user=other_user, name="Secret plans")
    Prompt.objects.create(dataset=theirs, position=1, source_line=2, text="classified")
    client.force_login(user)
    assert "Secret plans" not in client.get(reverse("bulk:index")).content.decode()
    assert client.get(reverse("bulk:dataset", args=[theirs.pk])).status_code == 404
    response = client.post(reverse("bulk:index"), {"dataset": theirs.pk, "file": csv_file(b"prompts\nx\n")})
    assert response.status_code == 400 and theirs.prompts.count() == 1
    client.force_login(other_user)
    assert "classified" in client.get(reverse("bulk:dataset", args=[theirs.pk])).content.decode()


def test_bulk_pages_need_a_login(client):
    assert client.get(reverse("bulk:index")).status_code == 302


# Large uploads: short transactions, all or nothing. Each test here commits for real (transaction=True), with
# small batches so that a few hundred rows make several transactions, and pauses the upload in the middle of its
# file (a reader that runs a callback between two rows) to look at the database from another connection.


def write_csv(tmp_path: Path, prompts: list[str], name: str = "prompts.csv") -> Path:
    path = tmp_path / name
    path.write_text("prompts\n" + "".join(f'"{p}"\n' for p in prompts), encoding="utf-8")
    return path


def pause_reading(monkeypatch, *, after: int, then: Callable[[], None]) -> None:
    """The upload's CSV reader runs `then` once `after` rows have been handed over (mid-file, mid-batch)."""
    read = services.prompts_read

    def reader(path: Path, **kwargs: object) -> Iterator[object]:
        for n, row in enumerate(read(path, **kwargs), 1):
            yield row
            if n == after:
                then()

    monkeypatch.setattr(services, "prompts_read", reader)


def in_another_connection(work: Callable[[], object]) -> object:
    """Run `work` on a thread of its own, hence its own database connection, which gives up on a locked
    database after half a second (the site waits 20 s); returns its result or the exception it raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            connection.ensure_connection()
            connection.connection.execute("PRAGMA busy_timeout = 500")
            outcome.append(work())
        except Exception as exc:
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return outcome[0]


def texts(dataset: Dataset) -> list[tuple[int, str]]:
    return list(dataset.prompts.values_list("position", "text"))


@pytest.mark.django_db(transaction=True)
def test_other_writers_get_a_turn_while_a_large_upload_runs_and_its_rows_show_only_at_the_end(
    monkeypatch, tmp_path, user
):
    monkeypatch.setattr(services, "BATCH", 50)
    dataset = Dataset.objects.create(user=user, name="Big")
    seen: dict[str, object] = {}

    def meanwhile() -> None:  # 175 rows read: three batches stored, the fourth being read
        seen["login"] = in_another_connection(lambda: User.objects.create_user("bystander", password="pw").pk)
        seen["visible"] = in_another_connection(lambda: dataset.prompts.count())
        seen["stored"] = in_another_connection(lambda: Prompt.stored.filter(dataset=dataset).count())

    pause_reading(monkeypatch, after=175, then=meanwhile)
    assert services.dataset_upload(dataset=dataset, path=write_csv(tmp_path, [f"p{n}" for n in range(400)])) == 400
    assert isinstance(seen["login"], int), seen["login"]  # not "database is locked"
    assert seen["visible"] == 0  # stored, committed, and not the dataset's yet
    assert seen["stored"] == 150
    assert texts(dataset) == [(n + 1, f"p{n}") for n in range(400)]
    dataset.refresh_from_db()
    assert (dataset.upload_from, dataset.upload_token, dataset.upload_seen_at) == (None, "", None)


@pytest.mark.django_db(transaction=True)
def test_a_file_refused_after_many_batches_leaves_the_dataset_exactly_as_it_was(monkeypatch, tmp_path, user):
    monkeypatch.setattr(services, "BATCH", 50)
    dataset = Dataset.objects.create(user=user, name="Keep")
    services.dataset_upload(dataset=dataset, path=write_csv(tmp_path, ["one", "two", "three"]))
    bad = tmp_path / "bad.csv"
    bad.write_text("prompts\n" + "fine\n" * 400 + "\nmore\n", encoding="utf-8")
    with pytest.raises(CsvProblem, match="line 402: blank prompt"):
        services.dataset_upload(dataset=dataset, path=bad)
    assert texts(dataset) == [(1, "one"), (2, "two"), (3, "three")]
    assert Prompt.stored.filter(dataset=dataset).count() == 3  # the 400 stored rows were removed
    dataset.refresh_from_db()
    assert (dataset.upload_from, dataset.upload_token) == (None, "")
    services.dataset_upload(dataset=dataset, path=write_csv(tmp_path, ["four"]))
    assert texts(dataset)[-1] == (4, "four")


@pytest.mark.django_db(transaction=True)
def test_an_upload_that_fails_half_way_leaves_no_rows_behind(monkeypatch, tmp_path, user):
    monkeypatch.setattr(services, "BATCH", 50)
    dataset = Dataset.objects.create(user=user, name="Keep")
    services.dataset_upload(dataset=dataset, path=write_csv(tmp_path, ["one"]))

    def fail() -> None:
        raise OSError("the disk went away")

    pause_reading(monkeypatch, after=120, then=fail)
    with pytest.raises(OSError, match="the disk went away"):
        services.dataset_upload(dataset=dataset, path=write_csv(tmp_path, [f"p{n}" for n in range(300)]))
    assert texts(dataset) == [(1, "one")]
    assert Prompt.stored.filter(dataset=dataset).count() == 1
    dataset.refresh_from_db()
    assert (dataset.upload_from, dataset.upload_token) == (None, "")


@pytest.mark.metering
@pytest.mark.django_db(transaction=True)
def test_an_upload_that_died_stays_hidden_from_every_reader_until_the_next_upload_clears_it(
    monkeypatch, tmp_path, client, user, fake_pool
):
    monkeypatch.setattr(services, "BATCH", 50)
    dataset = Dataset.objects.create(user=user, name="Questions")
    services.dataset_upload(dataset=dataset, path=write_csv(tmp_path, ["one", "two", "three"]))

    def die() -> None:
        raise SystemExit("killed")

    # As if the process were killed: no clean-up runs, its stored rows and its claim on the dataset stay.
    monkeypatch.setattr(services, "_upload_discard", lambda *args, **kwargs: None)
    pause_reading(monkeypatch, after=120, then=die)
    with pytest.raises(SystemExit):
        services.dataset_upload(dataset=dataset, path=write_csv(tmp_path, [f"p{n}" for n in range(300)]))
    monkeypatch.undo()
    assert Prompt.stored.filter(dataset=dataset).count() == 103

    # Every reader sees the three prompts only: counts, pages, a new job and the worker's claims.
    assert dataset.prompts.count() == 3 and Prompt.objects.filter(dataset=dataset).count() == 3
    client.force_login(user)
    assert '<td data-label="Prompts">3</td>' in client.get(reverse("bulk:index")).content.decode()
    page = client.get(reverse("bulk:dataset", args=[dataset.pk])).content.decode()
    assert "3 prompts." in page and "p0" not in page
    job = services.job_create(user=user, dataset=dataset, model_id="fake-chat", params={"max_tokens": 4})
    assert (job.total, job.last_position) == (3, 3)
    job_process(job.pk)
    assert sorted(BulkItem.objects.filter(job=job).values_list("prompt__position", flat=True)) == [1, 2, 3]

    # While its claim is fresh, another upload into the dataset is refused; once it has lapsed, the next
    # upload removes the dead rows and appends after the dataset's own prompts.
    with pytest.raises(services.UploadRefused, match="another file is being added to this dataset"):
        services.dataset_upload(dataset=dataset, path=write_csv(tmp_path, ["four"]))
    Dataset.objects.filter(pk=dataset.pk).update(upload_seen_at=timezone.now() - services.UPLOAD_LEASE)
    assert services.dataset_upload(dataset=dataset, path=write_csv(tmp_path, ["four", "five"])) == 2
    assert texts(dataset) == [(1, "one"), (2, "two"), (3, "three"), (4, "four"), (5, "five")]
    assert Prompt.stored.filter(dataset=dataset).count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_second_upload_into_a_dataset_being_uploaded_to_is_refused_with_a_message(
    monkeypatch, tmp_path, client, user, fake_pool
):
    monkeypatch.setattr(services, "BATCH", 50)
    dataset = Dataset.objects.create(user=user, name="Busy")
    client.force_login(user)
    seen = {}

    def second() -> None:
        seen["page"] = client.get(reverse("bulk:dataset", args=[dataset.pk])).content.decode()
        response = client.post(reverse("bulk:index"), {"dataset": dataset.pk, "file": csv_file(b"prompts\nx\n")})
        seen["status"], seen["body"] = response.status_code, response.content.decode()

    pause_reading(monkeypatch, after=75, then=second)
    assert services.dataset_upload(dataset=dataset, path=write_csv(tmp_path, [f"p{n}" for n in range(100)])) == 100
    assert "0 prompts." in seen["page"] and "A file is being added to this dataset" in seen["page"]
    assert seen["status"] == 400
    assert "prompts.csv: another file is being added to this dataset" in seen["body"]
    assert dataset.prompts.count() == 100 and Dataset.objects.filter(pk=dataset.pk).exists()
    assert "A file is being added" not in client.get(reverse("bulk:dataset", args=[dataset.pk])).content.decode()
