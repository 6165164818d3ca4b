"""The usage ledger: one record per inference, written exactly once, priced when it happened."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, OperationalError, connections, transaction
from django.utils import timezone

from inference import InvalidRequestError, Usage
from inference.types import (
    EmbeddingResult,
    Segment,
    SpeechResult,
    TextChunk,
    TranscriptionEnd,
    TranscriptionInfo,
    UpstreamUnavailableError,
)
from playground import engines
from playground.usage.models import UsageRecord
from playground.usage.pricing import cost_of, price_at

logger = logging.getLogger(__name__)


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Metering:
    """The one meter. Passed as the job's observer, it sees every item on the model's worker thread, by type,
    and when the job ends, however it ends (finished, cancelled by the client, stopped by a timeout (the caller
    sets `timed_out` first) or failed), it writes the ledger record exactly once and folds the measured speed
    into the model's card. The Playground's reply frames, the card, /metrics and the ledger all read it.
    A request refused before any work (a bad parameter) is not an inference and is not recorded.

    Time to first token counts from when the engine took the request (`start`), so waiting in line is not the
    model's speed; latency counts from submission, as the client waited.
    """

    user: Any
    model_id: str
    source: str
    endpoint: str
    token: Any = None
    project_id: int | None = None  # billed to (None: the token's project, else the user's personal one)
    ledger: bool = True  # write the record and the card's figures (off: measure only)
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.monotonic)
    engine_started: float | None = None
    first_output: float | None = None
    ended: float | None = None
    usage: Usage = field(default_factory=Usage)
    embedding_inputs: int = 0
    finish_reason: str | None = None
    finished: bool = False  # the engine delivered its whole result
    processing_seconds: float | None = None  # speech-to-text: decoding time
    timed_out: bool = False
    record: UsageRecord | None = None

    def start(self) -> None:
        self.engine_started = time.monotonic()

    def item(self, item: object) -> bool:
        now = time.monotonic()
        if isinstance(item, TextChunk):
            if item.text and self.first_output is None:
                self.first_output = now
            if item.finish_reason is None:
                return False
            self.usage = item.usage or Usage()
            self.finish_reason = item.finish_reason
            self.finished = item.finish_reason != "cancelled"
            return True
        if isinstance(item, TranscriptionInfo):
            self.usage = Usage(audio_seconds=item.duration)
            return False
        if isinstance(item, Segment):
            self.first_output = self.first_output or now
            return False
        if isinstance(item, TranscriptionEnd):
            self.processing_seconds = item.processing_seconds
        elif isinstance(item, EmbeddingResult):
            self.usage = item.usage
            self.embedding_inputs = len(item.vectors)
        elif isinstance(item, SpeechResult):
            self.usage = item.usage
        else:
            raise TypeError(f"the meter does not know {type(item).__name__}: add it to Metering.item")
        self.finished = True
        return True

    @property
    def ttft_seconds(self) -> float | None:
        if self.first_output is None:
            return None
        return self.first_output - (self.engine_started or self.started)

    @property
    def tokens_per_second(self) -> float | None:
        """Decode speed after the first token."""
        tokens, first, ended = self.usage.completion_tokens, self.first_output, self.ended
        if first is None or ended is None or tokens < 2 or ended <= first:
            return None
        return (tokens - 1) / (ended - first)

    @property
    def real_time_factor(self) -> float | None:
        if self.processing_seconds is None or self.usage.audio_seconds <= 0:
            return None
        return self.processing_seconds / self.usage.audio_seconds

    def outcome(self, *, cancelled: bool, error: BaseException | None) -> str:
        if self.timed_out:
            return UsageRecord.Outcome.TIMEOUT
        if error is not None:
            return UsageRecord.Outcome.ERROR
        if self.finished:
            return UsageRecord.Outcome.FINISHED
        return UsageRecord.Outcome.CANCELLED

    def done(self, *, cancelled: bool, error: BaseException | None) -> None:
        self.ended = time.monotonic()
        # A refusal, or a remote model's request that no server took: nothing was done, nothing to record.
        if isinstance(error, InvalidRequestError | UpstreamUnavailableError) or not self.ledger:
            return
        outcome = self.outcome(cancelled=cancelled, error=error)
        try:
            self.record = usage_record(
                metering=self,
                outcome=outcome,
                error=str(error or ""),
                latency_ms=(self.ended - self.started) * 1000,
            )
            if outcome in (UsageRecord.Outcome.FINISHED, UsageRecord.Outcome.CANCELLED):
                self._card_record()
        finally:
            # This runs on a model's worker thread: hand its database connection back rather than
            # keep one open per model thread between requests.
            connections.close_all()

    def _card_record(self) -> None:
        """The model card's measured speed, from this inference."""
        from playground.catalog.services import model_stats_record

        ttft, tps, rtf = self.ttft_seconds, self.tokens_per_second, self.real_time_factor
        if ttft is None and tps is None and rtf is None:
            return
        if self.processing_seconds is not None:  # speech-to-text: its factor, not a token speed
            ttft = None
        try:
            model_stats_record(model_id=self.model_id, tokens_per_second=tps, ttft_seconds=ttft, real_time_factor=rtf)
        except DatabaseError:  # the card's speed is a nicety; never lose the worker for it
            logger.exception("could not record the speed of %s", self.model_id)


@dataclass(frozen=True)
class Caller:
    """Who is asking, and through which door; set once per request, socket or job."""

    user: Any
    source: str
    endpoint: str
    token: Any = None
    project_id: int | None = None  # billed to (None: the token's project, else the user's personal one)


_caller: ContextVar[Caller | None] = ContextVar("usage_caller", default=None)


def caller_current() -> Caller | None:
    """Who is asking in this context (None outside any request, socket or job: operator tools)."""
    return _caller.get()


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
    """A fresh meter for one inference by the current caller (None outside any caller: operator tools). With
    PLAYGROUND_METERING off it measures without writing."""
    caller = _caller.get()
    if caller is None:
        return None
    return Metering(
        user=caller.user,
        token=caller.token,
        project_id=caller.project_id,
        source=caller.source,
        endpoint=caller.endpoint,
        model_id=model_id,
        ledger=settings.PLAYGROUND_METERING,
    )


def measured(job: Any) -> Metering | None:
    """The meter of a job that has ended (its figures: ttft_seconds, tokens_per_second, record)."""
    return job.observer if isinstance(job.observer, Metering) else None


def job_timed_out(job: Any) -> None:
    """Mark a job's record as a timeout; call just before cancelling it for running past its limit."""
    if isinstance(job.observer, Metering):
        job.observer.timed_out = True


# A usage row that meets a locked database (SQLite while another writer holds it) is retried this many times,
# waiting twice as long each time, before it is counted as lost (playground_usage_write_failures_total).
WRITE_RETRIES = 8
WRITE_FIRST_WAIT = 0.05  # seconds; 8 tries wait 12.75 s in all


def _create_retrying(create: Callable[[], UsageRecord], *, metering: Metering) -> UsageRecord:
    wait = WRITE_FIRST_WAIT
    for attempt in range(WRITE_RETRIES + 1):
        try:
            with transaction.atomic():
                return create()
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == WRITE_RETRIES:
                from playground.usage import metrics

                metrics.usage_write_failed(model=metering.model_id, endpoint=metering.endpoint)
                logger.error("usage record %s could not be written: %s", metering.request_id, exc)
                raise
            logger.warning("usage record %s: database locked, retrying in %.2f s", metering.request_id, wait)
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")


def usage_record(*, metering: Metering, outcome: str, error: str, latency_ms: float) -> UsageRecord:
    """Write the record for this inference. A second call with the same request_id returns the first record (the
    key is unique: its insert fails, without a look first at every first call)."""
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
        record = _create_retrying(
            lambda: UsageRecord.objects.create(
                request_id=metering.request_id,
                user=metering.user,
                token=metering.token,
                project_id=metering.project_id,
                model_id=spec.id,
                task=spec.task,
                source=metering.source,
                endpoint=metering.endpoint,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                audio_seconds=audio,
                characters=usage.characters,
                estimated=usage.estimated,
                embedding_inputs=metering.embedding_inputs,
                ttft_ms=None if metering.ttft_seconds is None else metering.ttft_seconds * 1000,
                latency_ms=latency_ms,
                outcome=outcome,
                error=error[:300],
                price_version=price,
                cost=cost,
            ),
            metering=metering,
        )
    except IntegrityError:  # the same request recorded before, or concurrently: keep the first
        return UsageRecord.objects.get(request_id=metering.request_id)
    from playground.usage import metrics

    metrics.usage_observe(record)
    return record
