"""Reconciliation: every door to a model ends in exactly one usage row that says what the client was told.

Each endpoint and socket is driven once (plus a cancel, a timeout and an engine error), and for each the new row's
quantities equal the answer's (usage in the body, the audio's duration, the characters spoken), its outcome is
right, and its cost is its price version times those quantities. At the end the ledger's totals equal /metrics.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Sum
from django.test import Client

from inference import SamplingParams, TextChunk
from playground.asgi import application
from playground.bulk.models import BulkItem
from playground.bulk.processing import job_process
from playground.bulk.services import dataset_create, dataset_upload, job_create
from playground.tokens.services import token_create
from playground.usage import metrics
from playground.usage.models import UsageRecord
from playground.usage.pricing import cost_of
from tests.usage.test_metrics import parse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.metering]

AUDIO = b"FAKEAUDIO:Hello there. How are you."  # the fake engine: 1 s per word, so 5 s
AUDIO_SECONDS = 5.0
CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "count with me"}], "max_tokens": 6}


class Ledger:
    """Each call's one new row."""

    def __init__(self) -> None:
        self.seen = 0

    async def new_rows(self, count: int) -> list[UsageRecord]:
        for _ in range(250):
            rows = await sync_to_async(list)(UsageRecord.objects.order_by("created_at", "id"))
            if len(rows) >= self.seen + count:
                assert len(rows) == self.seen + count, [r.endpoint for r in rows[self.seen :]]
                self.seen += count
                return rows[-count:]
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {count} new usage rows")

    async def new_row(self) -> UsageRecord:
        (row,) = await self.new_rows(1)
        return row

    async def none_new(self) -> None:
        await asyncio.sleep(0.2)
        assert await UsageRecord.objects.acount() == self.seen


def tokens(row: UsageRecord) -> tuple[int, int]:
    return row.prompt_tokens, row.completion_tokens


def events(body: bytes) -> list[Any]:
    return [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: {")]


@pytest.fixture
def cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _socket(path: str, cookie: bytes) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)])
    assert (await socket.connect(timeout=5))[0]
    return socket


async def _until(socket: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    while True:
        frame = await socket.receive_json_from(timeout=10)
        assert frame["type"] != "error", frame
        if frame["type"] == kind:
            return frame


async def test_every_door_writes_one_row_that_matches_the_answer(
    async_client, fake_pool, user, cookie, settings, tmp_path
):
    metrics.reset()
    _, raw = await sync_to_async(token_create)(user=user, label="reconcile")
    auth = {"headers": {"Authorization": f"Bearer {raw}"}}
    ledger = Ledger()

    async def post(path: str, body: dict[str, Any]) -> Any:
        return await async_client.post(path, json.dumps(body), content_type="application/json", **auth)

    # OpenAI chat and completions, whole and streamed (usage in the last chunk)
    answer = (await post("/v1/chat/completions", CHAT)).json()
    row = await ledger.new_row()
    assert tokens(row) == (answer["usage"]["prompt_tokens"], answer["usage"]["completion_tokens"])
    assert (row.outcome, row.source, row.endpoint) == ("finished", "api", "/v1/chat/completions")
    streamed = await post("/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    usage = events(b"".join([chunk async for chunk in streamed.streaming_content]))[-1]["usage"]
    row = await ledger.new_row()
    assert tokens(row) == (usage["prompt_tokens"], usage["completion_tokens"]) and row.outcome == "finished"
    completion = {"model": "fake-completion", "prompt": "one two", "max_tokens": 5}
    answer = (await post("/v1/completions", completion)).json()
    assert tokens(await ledger.new_row()) == (answer["usage"]["prompt_tokens"], answer["usage"]["completion_tokens"])

    # embeddings
    answer = (await post("/v1/embeddings", {"model": "fake-embed", "input": ["a b c", "d"]})).json()
    row = await ledger.new_row()
    assert (row.prompt_tokens, row.embedding_inputs, row.outcome) == (answer["usage"]["prompt_tokens"], 2, "finished")

    # speech-to-text in every format, and translation: the audio's duration
    for fmt in ("json", "verbose_json", "text", "srt", "vtt"):
        form = {"model": "fake-stt", "file": SimpleUploadedFile("a.wav", AUDIO), "response_format": fmt}
        response = await async_client.post("/v1/audio/transcriptions", form, **auth)
        assert response.status_code == 200, response.content
        row = await ledger.new_row()
        assert float(row.audio_seconds) == AUDIO_SECONDS and row.outcome == "finished", fmt
        if fmt == "json":
            assert response.json()["usage"]["seconds"] == AUDIO_SECONDS
        if fmt == "verbose_json":
            assert response.json()["duration"] == AUDIO_SECONDS
    form = {"model": "fake-stt", "file": SimpleUploadedFile("a.wav", AUDIO)}
    response = await async_client.post("/v1/audio/translations", form, **auth)
    assert response.status_code == 200
    assert float((await ledger.new_row()).audio_seconds) == AUDIO_SECONDS

    # speech: the characters spoken, and a finished outcome (the whole audio was sent)
    for fmt in ("wav", "mp3"):
        text = "Hello there, reconciler."
        response = await post("/v1/audio/speech", {"model": "fake-tts", "input": text, "response_format": fmt})
        assert response.status_code == 200
        row = await ledger.new_row()
        assert (row.characters, row.outcome) == (len(text), "finished"), fmt

    # TGI, whole and streamed
    answer = (await post("/models/fake-chat/generate", {"inputs": "hi", "parameters": {"max_new_tokens": 4}})).json()
    row = await ledger.new_row()
    assert (
        row.completion_tokens == answer["details"]["generated_tokens"] and row.endpoint == "/models/fake-chat/generate"
    )
    streamed = await post("/models/fake-chat/generate_stream", {"inputs": "hi", "parameters": {"max_new_tokens": 3}})
    details = events(b"".join([chunk async for chunk in streamed.streaming_content]))[-1]["details"]
    assert tokens(await ledger.new_row()) == (details["input_length"], details["generated_tokens"])

    # the Playground: chat and completion sockets, the speech socket, the embeddings and voice pages
    chat = await _socket("/ws/chat/", cookie)
    frame = {"type": "generate", "model": "fake-chat", "conversation": None, "system": "", "content": "hi"}
    await chat.send_json_to({**frame, "params": {"max_tokens": 7}})
    done = await _until(chat, "done")
    row = await ledger.new_row()
    assert tokens(row) == (done["usage"]["prompt_tokens"], done["usage"]["completion_tokens"])
    assert (row.source, row.endpoint, row.outcome) == ("playground", "ws/chat", "finished")
    assert done["ttft_ms"] is not None and done["ttft_ms"] == round(row.ttft_ms, 1)  # the one measurement
    await chat.send_json_to({**frame, "mode": "completion", "model": "fake-completion", "params": {"max_tokens": 3}})
    done = await _until(chat, "done")
    assert tokens(await ledger.new_row()) == (done["usage"]["prompt_tokens"], done["usage"]["completion_tokens"])
    await chat.disconnect()
    speech = await _socket("/ws/speech/", cookie)
    await speech.send_json_to({"type": "transcribe", "model": "fake-stt", "size": len(AUDIO)})
    await speech.send_to(bytes_data=AUDIO)
    done = await _until(speech, "done")
    assert float((await ledger.new_row()).audio_seconds) == done["usage"]["audio_seconds"] == AUDIO_SECONDS
    await speech.disconnect()
    page = Client()
    await sync_to_async(page.force_login)(user)
    await sync_to_async(page.post)("/studio/fake-embed/embeddings/", {"input": "one two\nthree"})
    row = await ledger.new_row()
    assert (row.embedding_inputs, row.source) == (2, "playground")
    await sync_to_async(page.post)("/studio/fake-tts/speech/", {"input": "Say this.", "speed": "1"})
    assert (await ledger.new_row()).characters == len("Say this.")

    # a bulk job: one row per prompt, each with the tokens stored beside the prompt's response
    dataset = await sync_to_async(dataset_create)(user=user, name="reconcile")
    csv = tmp_path / "prompts.csv"
    csv.write_text("prompts\nfirst prompt\nsecond prompt\n")
    await sync_to_async(dataset_upload)(dataset=dataset, path=csv)
    job = await sync_to_async(job_create)(user=user, dataset=dataset, model_id="fake-chat", params={"max_tokens": 3})
    await sync_to_async(job_process, thread_sensitive=False)(job.pk)
    bulk_rows = await ledger.new_rows(2)
    items = await sync_to_async(list)(BulkItem.objects.filter(job=job))
    assert sorted(tokens(r) for r in bulk_rows) == sorted((i.prompt_tokens, i.completion_tokens) for i in items)
    assert {r.source for r in bulk_rows} == {"bulk"}

    # a cancel (the client leaves a stream), a timeout and an engine error
    engine = fake_pool.workers["fake-chat"].engine
    engine.delay = 0.05
    streamed = await post("/v1/chat/completions", {**CHAT, "max_tokens": 50, "stream": True})
    received: list[bytes] = []

    async def send() -> None:
        async for part in streamed.streaming_content:
            received.append(part)

    sending = asyncio.create_task(send())
    while len(received) < 2:
        await asyncio.sleep(0.01)
    sending.cancel()  # what Django's ASGI handler does when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await sending
    row = await ledger.new_row()
    assert row.outcome == "cancelled" and row.completion_tokens == engine.generated[-1] < 50
    settings.PLAYGROUND_REQUEST_TIMEOUT = 0.3
    assert (await post("/v1/chat/completions", {**CHAT, "max_tokens": 50})).status_code == 504
    row = await ledger.new_row()
    assert row.outcome == "timeout" and row.completion_tokens == engine.generated[-1] < 50
    settings.PLAYGROUND_REQUEST_TIMEOUT = 30
    engine.delay = 0

    def breaks(messages: Any, params: SamplingParams, *_: Any) -> Iterator[TextChunk]:
        yield TextChunk("one")
        raise RuntimeError("the engine fell over")

    engine.chat = breaks
    assert (await post("/v1/chat/completions", CHAT)).status_code == 500
    row = await ledger.new_row()
    assert row.outcome == "error" and "fell over" in row.error
    # a refusal is no inference
    assert (await post("/v1/chat/completions", {**CHAT, "temperature": 5})).status_code == 400
    await ledger.none_new()

    # every row's cost is its price times its quantities; the ledger's totals are /metrics'
    rows = await sync_to_async(list)(UsageRecord.objects.select_related("price_version"))
    for row in rows:
        expected = cost_of(
            price=row.price_version,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            audio_seconds=row.audio_seconds,
            characters=row.characters,
        )
        assert row.cost == expected, row.endpoint
    series = parse(metrics.metrics_render())
    totals = await UsageRecord.objects.aaggregate(
        prompt=Sum("prompt_tokens"),
        completion=Sum("completion_tokens"),
        audio=Sum("audio_seconds"),
        chars=Sum("characters"),
    )
    assert sum(series["playground_requests_total"].values()) == len(rows)
    assert sum(series["playground_prompt_tokens_total"].values()) == totals["prompt"]
    assert sum(series["playground_completion_tokens_total"].values()) == totals["completion"]
    assert sum(series["playground_audio_seconds_total"].values()) == pytest.approx(float(totals["audio"]))
    assert sum(series["playground_characters_total"].values()) == totals["chars"]
    assert sum(series["playground_errors_total"].values()) == 1


def test_a_speech_request_cut_short_is_cancelled_and_a_whole_one_finished(fake_pool, user):
    """The meter decides by what the engine delivered, not by whether the consumer stopped the job afterwards."""
    from playground.serving import speech_job
    from playground.usage.services import Caller, metered_as
    from tests.usage.test_ledger import wait_for_records

    with metered_as(Caller(user=user, source="api", endpoint="/v1/audio/speech")):
        job = speech_job(model_id="fake-tts", text="All of it.")
        next(iter(job))  # the one result; leaving the loop cancels the job, as the API does
    (row,) = wait_for_records(1)
    assert (row.outcome, row.characters) == ("finished", len("All of it."))
