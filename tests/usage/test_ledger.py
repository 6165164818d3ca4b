"""The usage ledger: one record per inference, exactly once, whatever the outcome, priced with Decimal."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from inference import ChatMessage, SamplingParams
from playground import engines
from playground.serving import text_stream
from playground.studio.services import embeddings_create, speech_synthesize, transcription_stream
from playground.usage.models import PriceVersion, UsageRecord
from playground.usage.pricing import CATALOG_EPOCH
from playground.usage.services import Caller, job_timed_out, metered_as, metering_for, usage_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.metering]
HELLO = [ChatMessage("user", "hello there")]


@pytest.fixture
def priced(fake_pool):  # noqa: ANN201
    PriceVersion.objects.create(
        model_id="fake-chat",
        effective_from=CATALOG_EPOCH,
        input_per_million_tokens=Decimal("2"),
        output_per_million_tokens=Decimal("6"),
        per_request=Decimal("0.0001"),
    )
    return fake_pool


def wait_for_records(n: int, timeout: float = 5.0) -> list[UsageRecord]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = list(UsageRecord.objects.order_by("created_at"))
        if len(records) >= n:
            return records
        time.sleep(0.02)
    raise AssertionError(f"expected {n} usage records, found {UsageRecord.objects.count()}")


def playground(user: Any) -> Caller:
    return Caller(user=user, source="playground", endpoint="ws/chat")


def test_finished_stream_is_recorded_once_with_the_engines_counts_and_decimal_cost(priced, user):
    with metered_as(playground(user)):
        chunks = text_stream(model_id="fake-chat", params=SamplingParams(max_tokens=5, seed=1), messages=HELLO).result()
    (record,) = wait_for_records(1)
    usage = chunks[-1].usage
    assert (record.prompt_tokens, record.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert record.outcome == "finished" and record.source == "playground" and record.user == user
    assert record.task == "text-to-text" and record.ttft_ms is not None and record.latency_ms >= record.ttft_ms
    expected = (
        Decimal("0.0001") + Decimal(usage.prompt_tokens) * 2 / 10**6 + Decimal(usage.completion_tokens) * 6 / 10**6
    )
    assert record.cost == expected


def test_cancelled_stream_charges_the_tokens_generated_before_the_cancel(fake_pool, user):
    fake_pool.workers["fake-chat"].load()
    fake_pool.workers["fake-chat"].engine.delay = 0.02
    with metered_as(playground(user)):
        job = text_stream(model_id="fake-chat", params=SamplingParams(max_tokens=12, seed=1), messages=HELLO)
    seen = 0
    for _chunk in job:
        seen += 1
        if seen == 3:
            break  # the client went away: the iterator cancels the job
    (record,) = wait_for_records(1)
    assert record.outcome == "cancelled"
    assert 3 <= record.completion_tokens < 12


def test_timeout_is_recorded_as_a_timeout(fake_pool, user):
    fake_pool.workers["fake-chat"].load()
    fake_pool.workers["fake-chat"].engine.delay = 0.02
    with metered_as(playground(user)):
        job = text_stream(model_id="fake-chat", params=SamplingParams(max_tokens=12), messages=HELLO)
    job.get(timeout=5)
    job_timed_out(job)
    job.cancel()
    (record,) = wait_for_records(1)
    assert record.outcome == "timeout" and record.completion_tokens >= 1


def test_engine_error_after_starting_is_recorded_and_a_refusal_is_not(fake_pool, user):
    def breaks(engine: Any, stop: threading.Event) -> Iterator[Any]:
        def chunks() -> Iterator[Any]:
            # the reply's text, then a failure before its last chunk
            yield from (c for c in engine.chat(HELLO, SamplingParams(max_tokens=3), stop) if not c.finish_reason)
            raise RuntimeError("GPU fell off the bus")

        return chunks()

    with metered_as(playground(user)):
        with pytest.raises(RuntimeError):
            fake_pool.submit("fake-chat", breaks, metering_for(model_id="fake-chat")).result()
        with pytest.raises(Exception, match="more than the context"):
            text_stream(model_id="fake-chat", params=SamplingParams(max_tokens=4000), messages=HELLO).result()
    (record,) = wait_for_records(1)
    assert record.outcome == "error" and "GPU fell off the bus" in record.error
    time.sleep(0.1)
    assert UsageRecord.objects.count() == 1  # the refused request was no inference


def test_embeddings_transcription_and_speech_record_their_units(fake_pool, user):
    caller = Caller(user=user, source="playground", endpoint="studio")
    with metered_as(caller):
        embeddings_create(model_id="fake-embed", texts=["one", "two words", "three more words"])
        list(
            transcription_stream(
                model_id="fake-stt", audio=b"FAKEAUDIO:Hello world. Bye now.", task="transcribe", language=""
            )
        )
        speech_synthesize(model_id="fake-tts", text="Say this.")
    embed, stt, tts = wait_for_records(3)
    assert embed.embedding_inputs == 3 and embed.prompt_tokens == 3 + 4 + 5
    assert stt.audio_seconds == Decimal("4.000") and stt.task == "speech-to-text"
    assert tts.characters == len("Say this.") and tts.task == "text-to-speech"


def test_price_change_creates_a_version_and_old_records_keep_their_price(priced, user):
    params = SamplingParams(max_tokens=3, seed=1)
    with metered_as(playground(user)):
        text_stream(model_id="fake-chat", params=params, messages=HELLO).result()
    PriceVersion.objects.create(
        model_id="fake-chat",
        effective_from=timezone.now() - timedelta(milliseconds=1),
        input_per_million_tokens=Decimal("20"),
        output_per_million_tokens=Decimal("60"),
    )
    with metered_as(playground(user)):
        text_stream(model_id="fake-chat", params=params, messages=HELLO).result()
    old, new = wait_for_records(2)
    assert old.price_version.input_per_million_tokens == Decimal("2")
    assert new.price_version.input_per_million_tokens == Decimal("20")
    assert new.cost > old.cost
    old.refresh_from_db()
    assert old.price_version.input_per_million_tokens == Decimal("2")


def test_recording_the_same_request_twice_keeps_one_record(fake_pool, user):
    metering = metering_for(model_id="fake-chat")
    assert metering is None  # outside any caller nothing is metered (operator tools)
    with metered_as(playground(user)):
        metering = metering_for(model_id="fake-chat")
    first = usage_record(metering=metering, outcome="finished", error="", latency_ms=1.0)
    second = usage_record(metering=metering, outcome="finished", error="", latency_ms=2.0)
    assert first.pk == second.pk and UsageRecord.objects.count() == 1


def test_unpriced_model_is_charged_its_catalog_prices(user):
    engines.set_pool(None)  # the real catalog: smollm2 has default prices
    try:
        spec = engines.get_pool().spec("smollm2-135m-instruct")
        with metered_as(playground(user)):
            metering = metering_for(model_id=spec.id)
        metering.usage = metering.usage.__class__(prompt_tokens=1_000_000, completion_tokens=1_000_000)
        record = usage_record(metering=metering, outcome="finished", error="", latency_ms=1.0)
        assert record.cost == Decimal("0.02") + Decimal("0.04")
        assert record.price_version.note == "catalog default"
    finally:
        engines.set_pool(None)


def test_a_locked_database_is_retried_and_a_lost_row_is_counted(fake_pool, user, monkeypatch, caplog):
    from django.db import OperationalError

    from playground.usage import metrics, services

    monkeypatch.setattr(services, "WRITE_FIRST_WAIT", 0.001)
    real_create = UsageRecord.objects.create
    failures = {"left": 2}

    def flaky(**fields: Any) -> UsageRecord:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("database is locked")
        return real_create(**fields)

    monkeypatch.setattr(UsageRecord.objects, "create", flaky)
    with metered_as(playground(user)):
        text_stream(model_id="fake-chat", params=SamplingParams(max_tokens=2), messages=HELLO).result()
    (record,) = wait_for_records(1)  # written on the third try, not dropped
    assert record.completion_tokens == 2

    metrics.reset()
    failures["left"] = 1000
    with metered_as(playground(user)):
        text_stream(model_id="fake-chat", params=SamplingParams(max_tokens=2), messages=HELLO).result()
    assert UsageRecord.objects.count() == 1
    assert "could not be written" in caplog.text
    assert 'playground_usage_write_failures_total{model="fake-chat",endpoint="ws/chat"} 1' in metrics.metrics_render()


def test_the_card_counts_every_door_not_only_the_playground(fake_pool, user):
    from playground.catalog.models import ModelStats
    from playground.serving import speech_job, transcription_job

    for source in ("api", "bulk", "playground"):
        with metered_as(Caller(user=user, source=source, endpoint=f"/{source}")):
            text_stream(model_id="fake-chat", params=SamplingParams(max_tokens=4), messages=HELLO).result()
    with metered_as(Caller(user=user, source="api", endpoint="/v1/audio/transcriptions")):
        list(transcription_job(model_id="fake-stt", audio=b"FAKEAUDIO:One two three."))
        speech_job(model_id="fake-tts", text="Hi.").result()
    wait_for_records(5)
    stats = ModelStats.objects.get(model_id="fake-chat")
    assert stats.text_samples == 3 and stats.tokens_per_second and stats.ttft_ms is not None
    assert ModelStats.objects.get(model_id="fake-stt").speech_samples == 1
    assert not ModelStats.objects.filter(model_id="fake-tts").exists()  # no speed to show for a voice


def test_in_flight_counts_every_request_a_batching_model_runs(fake_pool):
    from playground.usage import metrics

    worker = fake_pool.workers["fake-chat"]
    worker._running.update({object(), object(), object()})  # three sequences decoding together
    try:
        assert 'playground_in_flight{model="fake-chat"} 3' in metrics.metrics_render()
    finally:
        worker._running.clear()
