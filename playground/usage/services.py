"""The usage ledger: one record per inference, written exactly once, priced when it happened."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from inference import InvalidRequestError, Usage
from inference.types import EmbeddingResult, Segment, TextChunk, TranscriptionInfo
from playground import engines
from playground.usage.models import UsageRecord
from playground.usage.pricing import cost_of, price_at

logger = logging.getLogger(__name__)


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Metering:
    """Meters one inference. Passed as the job's observer, it sees every item on the model's worker
    thread and writes the ledger record exactly once when the job ends, however it ends: finished,
    cancelled by the client, stopped by a timeout (the caller sets `timed_out` first) or failed.
    A request refused before any work (a bad parameter) is not an inference and is not recorded.
    """

    user: Any
    model_id: str
    source: str
    endpoint: str
    token: Any = None
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.monotonic)
    usage: Usage = field(default_factory=Usage)
    embedding_inputs: int = 0
    ttft_ms: float | None = None
    finish_reason: str | None = None
    timed_out: bool = False
    record: UsageRecord | None = None

    def item(self, item: Any) -> None:
        # Text pieces (the engine's TextChunk, or an API's own piece type) carry text and a finish reason.
        is_text = isinstance(item, TextChunk) or hasattr(item, "finish_reason")
        if self.ttft_ms is None and (isinstance(item, Segment) or (is_text and bool(getattr(item, "text", "")))):
            self.ttft_ms = (time.monotonic() - self.started) * 1000
        if isinstance(item, TranscriptionInfo):
            self.usage = Usage(audio_seconds=item.duration)
        elif getattr(item, "usage", None) is not None:
            self.usage = item.usage
            self.finish_reason = getattr(item, "finish_reason", None)
            if isinstance(item, EmbeddingResult):
                self.embedding_inputs = len(item.vectors)

    def done(self, *, cancelled: bool, error: BaseException | None) -> None:
        if isinstance(error, InvalidRequestError):
            return
        if self.timed_out:
            outcome = UsageRecord.Outcome.TIMEOUT
        elif error is not None:
            outcome = UsageRecord.Outcome.ERROR
        elif self.finish_reason == "cancelled" or (cancelled and self.finish_reason is None):
            outcome = UsageRecord.Outcome.CANCELLED
        else:
            outcome = UsageRecord.Outcome.FINISHED
        try:
            self.record = usage_record(
                metering=self,
                outcome=outcome,
                error=str(error or ""),
                latency_ms=(time.monotonic() - self.started) * 1000,
            )
        finally:
            # This runs on a model's worker thread: hand its database connection back rather than
            # keep one open per model thread between requests.
            connections.close_all()


@dataclass(frozen=True)
class Caller:
    """Who is asking, and through which door; set once per request, socket or job."""

    user: Any
    source: str
    endpoint: str
    token: Any = None


_caller: ContextVar[Caller | None] = ContextVar("usage_caller", default=None)


def caller_set(caller: Caller) -> None:
    """Meter every inference started from this context (a consumer's task, an API request) as `caller`."""
    _caller.set(caller)


@contextmanager
def metered_as(caller: Caller) -> Iterator[None]:
    reset = _caller.set(caller)
    try:
        yield
    finally:
        _caller.reset(reset)


def metering_for(*, model_id: str) -> Metering | None:
    """A fresh meter for one inference by the current caller (None outside any caller: operator tools)."""
    caller = _caller.get()
    if caller is None or not settings.PLAYGROUND_METERING:
        return None
    return Metering(
        user=caller.user, token=caller.token, source=caller.source, endpoint=caller.endpoint, model_id=model_id
    )


def job_timed_out(job: Any) -> None:
    """Mark a job's record as a timeout; call just before cancelling it for running past its limit."""
    if isinstance(job.observer, Metering):
        job.observer.timed_out = True


def usage_record(*, metering: Metering, outcome: str, error: str, latency_ms: float) -> UsageRecord:
    """Write the record for this inference. A second call with the same request_id returns the first record."""
    existing = UsageRecord.objects.filter(request_id=metering.request_id).first()
    if existing is not None:
        return existing
    spec = engines.get_pool().spec(metering.model_id)
    now = timezone.now()
    price = price_at(spec=spec, at=now)
    usage = metering.usage
    audio = Decimal(str(round(usage.audio_seconds, 3)))
    cost = cost_of(
        price=price,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        audio_seconds=audio,
        characters=usage.characters,
    )
    try:
        with transaction.atomic():
            record = UsageRecord.objects.create(
                request_id=metering.request_id,
                user=metering.user,
                token=metering.token,
                model_id=spec.id,
                task=spec.task,
                source=metering.source,
                endpoint=metering.endpoint,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                audio_seconds=audio,
                characters=usage.characters,
                embedding_inputs=metering.embedding_inputs,
                ttft_ms=metering.ttft_ms,
                latency_ms=latency_ms,
                outcome=outcome,
                error=error[:300],
                price_version=price,
                cost=cost,
            )
    except IntegrityError:  # the same request recorded concurrently: keep the first
        return UsageRecord.objects.get(request_id=metering.request_id)
    from playground.usage import metrics

    metrics.usage_observe(record)
    return record
