"""/metrics: Prometheus text that agrees with the ledger after a mixed run; token or staff only."""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from django.db.models import Count, Sum

from inference import ChatMessage, SamplingParams
from playground.serving import text_stream
from playground.studio.services import embeddings_create, speech_synthesize, transcription_stream
from playground.usage import metrics
from playground.usage.models import UsageRecord
from playground.usage.services import Caller, metered_as, metering_for
from tests.usage.test_ledger import wait_for_records

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.metering]
SAMPLE = re.compile(r'^(\w+)\{model="([^"]*)",endpoint="([^"]*)"\} (\S+)$')


def parse(text: str) -> dict[str, dict[tuple[str, str], float]]:
    series: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            name, model, endpoint, value = match.groups()
            series[name][(model, endpoint)] = float(value)
    return series


def mixed_run(pool: Any, user: Any) -> None:
    hello = [ChatMessage("user", "hello")]
    with metered_as(Caller(user=user, source="playground", endpoint="ws/chat")):
        text_stream(model_id="fake-chat", params=SamplingParams(max_tokens=5, seed=1), messages=hello).result()
        job = text_stream(model_id="fake-chat", params=SamplingParams(max_tokens=12, seed=2), messages=hello)
        for n, _ in enumerate(job):
            if n == 2:
                break

        def breaks(engine: Any, stop: threading.Event) -> Iterator[Any]:
            def chunks() -> Iterator[Any]:
                # the reply's text, then a failure before its last chunk
                yield from (c for c in engine.chat(hello, SamplingParams(max_tokens=3), stop) if not c.finish_reason)
                raise RuntimeError("boom")

            return chunks()

        with pytest.raises(RuntimeError):
            pool.submit("fake-chat", breaks, metering_for(model_id="fake-chat")).result()
    with metered_as(Caller(user=user, source="api", endpoint="/v1/x")):
        embeddings_create(model_id="fake-embed", texts=["a b", "c"])
        list(
            transcription_stream(model_id="fake-stt", audio=b"FAKEAUDIO:One two three.", task="transcribe", language="")
        )
        speech_synthesize(model_id="fake-tts", text="Hello there.")


def test_metrics_agree_with_the_ledger_after_a_mixed_run(client, fake_pool, user, settings):
    metrics.reset()
    fake_pool.workers["fake-chat"].load()
    fake_pool.workers["fake-chat"].engine.delay = 0.01
    mixed_run(fake_pool, user)
    wait_for_records(6)
    settings.PLAYGROUND_METRICS_TOKEN = "scrape-secret"
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    series = parse(response.content.decode())
    ledger = UsageRecord.objects.values("model_id", "endpoint").annotate(
        n=Count("id"),
        prompt=Sum("prompt_tokens"),
        completion=Sum("completion_tokens"),
        audio=Sum("audio_seconds"),
        chars=Sum("characters"),
    )
    assert len(ledger) == 4
    for row in ledger:
        key = (row["model_id"], row["endpoint"])
        assert series["playground_requests_total"][key] == row["n"]
        assert series["playground_prompt_tokens_total"][key] == row["prompt"]
        assert series["playground_completion_tokens_total"][key] == row["completion"]
        assert series["playground_audio_seconds_total"][key] == float(row["audio"])
        assert series["playground_characters_total"][key] == row["chars"]
        assert series["playground_latency_seconds_count"][key] == row["n"]
    errors = UsageRecord.objects.filter(outcome="error").count()
    assert sum(series["playground_errors_total"].values()) == errors == 1
    body = response.content.decode()
    assert 'playground_queue_depth{model="fake-chat"} 0' in body
    assert 'playground_model_state{model="fake-chat",state="loaded"} 1' in body
    assert 'playground_model_state{model="fake-embed",state="loaded"} 1' in body
    assert "# TYPE playground_ttft_seconds histogram" in body and 'le="+Inf"' in body


def test_metrics_need_the_token_or_staff(client, fake_pool, user, django_user_model, settings):
    settings.PLAYGROUND_METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    client.force_login(user)
    assert client.get("/metrics").status_code == 403
    staff = django_user_model.objects.create_user("ops", password="x-ops-pass-1", is_staff=True)
    client.force_login(staff)
    assert client.get("/metrics").status_code == 200
    settings.PLAYGROUND_METRICS_TOKEN = ""
    client.logout()
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403
