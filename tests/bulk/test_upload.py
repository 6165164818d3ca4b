"""Bulk Prompts upload: datasets per user, whole-file validation with a message naming file and place."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from playground.bulk.models import Dataset, Prompt

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
    assert "Questions" in body and "<td>3</td>" in body


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
