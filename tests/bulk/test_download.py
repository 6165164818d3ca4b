"""Downloading a job's results: an async stream read in batches, byte for byte what the download always gave."""

from __future__ import annotations

import csv
import io
import json
import warnings

import pytest
from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from playground.bulk import services
from playground.bulk.models import BulkItem, BulkJob, Dataset, Prompt

COLUMNS = [
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


def chunks(response: StreamingHttpResponse) -> list[bytes]:
    """The body's pieces, read the way Django's ASGI handler reads them (from a sync test: the queries run on
    this thread, inside the test's transaction)."""

    async def read() -> list[bytes]:
        return [piece async for piece in response]

    return async_to_sync(read)()


def old_download(job: BulkJob, fmt: str) -> bytes:
    """What the download gave before it was streamed in batches: every result in one query, one writer."""
    rows = [
        {
            "position": item.prompt.position,
            "prompt": item.prompt.text,
            "response": item.text,
            "status": "ok" if item.state == "done" else "failed",
            "finish_reason": item.finish_reason,
            "prompt_tokens": item.prompt_tokens,
            "completion_tokens": item.completion_tokens,
            "latency_ms": round(item.latency_ms or 0, 1),
            "error": item.error,
        }
        for item in job.items.exclude(state="claimed").select_related("prompt").order_by("prompt__position")
    ]
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def finished_job(user, dataset: Dataset, status: str = "cancelled") -> BulkJob:  # noqa: ANN001
    count = dataset.prompts.count()
    return BulkJob.objects.create(
        user=user, dataset=dataset, model_id="fake-chat", status=status, total=count, last_position=count
    )


def item(job: BulkJob, prompt: Prompt, state: str = "done", **fields: object) -> BulkItem:
    now = timezone.now()
    return BulkItem(job=job, prompt=prompt, state=state, worker="w", lease_until=now, finished_at=now, **fields)


@pytest.mark.django_db
def test_download_puts_each_prompt_beside_its_response_as_csv_and_jsonl(client, user, make_dataset):
    dataset = make_dataset(user, ['Say "hi", twice', "multi\nline", "third"])
    job = finished_job(user, dataset, "failed")
    one, two, three = dataset.prompts.all()
    BulkItem.objects.bulk_create(
        [
            item(job, one, text="hi, hi", finish_reason="stop", prompt_tokens=4, completion_tokens=3, latency_ms=12.34),
            item(job, two, "failed", error="the prompt is too long"),
            item(job, three, text="ok", finish_reason="length", completion_tokens=1),
        ]
    )
    client.force_login(user)
    response = client.get(reverse("bulk:download", args=[job.pk, "csv"]))
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="questions-fake-chat-job{job.pk}.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks(response)).decode())))
    assert [(r["position"], r["prompt"], r["response"], r["status"]) for r in rows] == [
        ("1", 'Say "hi", twice', "hi, hi", "ok"),
        ("2", "multi\nline", "", "failed"),
        ("3", "third", "ok", "ok"),
    ]
    assert rows[0]["latency_ms"] == "12.3" and rows[0]["completion_tokens"] == "3"
    assert rows[1]["error"] == "the prompt is too long"
    response = client.get(reverse("bulk:download", args=[job.pk, "jsonl"]))
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    lines = [json.loads(line) for line in b"".join(chunks(response)).decode().splitlines()]
    assert [line["response"] for line in lines] == ["hi, hi", "", "ok"]
    assert client.get(reverse("bulk:download", args=[job.pk, "xml"])).status_code == 404


@pytest.mark.django_db
def test_a_job_of_thousands_of_rows_downloads_in_batches_exactly_as_before(monkeypatch, client, user, make_dataset):
    monkeypatch.setattr(services, "RESULT_BATCH", 256)
    texts = [f'Prompt {n}, "quoted", café — 😀' + ("\nsecond line" if n % 5 == 0 else "") for n in range(1, 3001)]
    dataset = make_dataset(user, texts)
    job = finished_job(user, dataset)
    other = finished_job(user, dataset)
    items = []
    for prompt in dataset.prompts.all():
        n = prompt.position
        if n % 11 == 0:
            continue  # never run (the job was cancelled)
        if n % 13 == 0:
            items.append(item(job, prompt, "claimed"))  # in flight: not a result
        elif n % 7 == 0:
            items.append(item(job, prompt, "failed", error=f"error {n}, with a comma", latency_ms=n / 3))
        else:
            items.append(
                item(
                    job,
                    prompt,
                    text=f'Reply {n}: «ok»,\n"done"',
                    finish_reason="stop" if n % 2 else "length",
                    prompt_tokens=n,
                    completion_tokens=n % 17,
                    latency_ms=n * 0.37,
                )
            )
        items.append(item(other, prompt, text="another job's result"))
    BulkItem.objects.bulk_create(items)
    # An upload into the dataset under way: its hidden rows come after the job's prompts and are not read.
    Dataset.objects.filter(pk=dataset.pk).update(upload_from=3001, upload_token="x", upload_seen_at=timezone.now())
    Prompt.stored.create(dataset=dataset, position=3001, source_line=2, text="hidden")
    results = job.items.exclude(state="claimed").count()
    client.force_login(user)
    for fmt in ("csv", "jsonl"):
        response = client.get(reverse("bulk:download", args=[job.pk, fmt]))
        assert response.is_async
        pieces = chunks(response)
        assert b"".join(pieces) == old_download(job, fmt)
        assert len(pieces) >= results // 256  # one piece per batch (and the CSV header first, alone)
    assert b"".join(pieces).count(b"\n") > 2000


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_header_goes_out_before_any_result_is_read(async_client, user, make_dataset):
    dataset = await Dataset.objects.acreate(user=user, name="Questions")
    await Prompt.objects.acreate(dataset=dataset, position=1, source_line=2, text="hello")
    job = await BulkJob.objects.acreate(
        user=user, dataset=dataset, model_id="fake-chat", status="completed", total=1, last_position=1
    )
    await BulkItem.objects.acreate(
        job=job, prompt_id=(await dataset.prompts.aget()).pk, state="done", worker="w", lease_until=timezone.now()
    )
    await async_client.aforce_login(user)
    response = await async_client.get(reverse("bulk:download", args=[job.pk, "csv"]))
    assert response.is_async
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sync iterator would be read whole first, with a warning
        body = aiter(response)
        assert (
            await anext(body)
            == b"position,prompt,response,status,finish_reason,prompt_tokens,completion_tokens,latency_ms,error\r\n"
        )
        assert (await anext(body)).startswith(b"1,hello,,ok,")
        assert [piece async for piece in body] == []


@pytest.mark.django_db
def test_results_belong_to_their_owner(client, user, other_user, make_dataset):
    job = finished_job(user, make_dataset(user, ["secret prompt"]), "completed")
    BulkItem.objects.bulk_create([item(job, job.dataset.prompts.get(), text="secret answer")])
    client.force_login(other_user)
    for fmt in ("csv", "jsonl"):
        assert client.get(reverse("bulk:download", args=[job.pk, fmt])).status_code == 404
    client.logout()
    response = client.get(reverse("bulk:download", args=[job.pk, "csv"]))
    assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(user)
    assert b"secret answer" in b"".join(chunks(client.get(reverse("bulk:download", args=[job.pk, "csv"]))))
