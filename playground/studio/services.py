"""Speech-to-text, embeddings and text-to-speech for the Playground: validate, then run on the model's worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from inference import Job
from inference.types import EmbeddingResult, InvalidRequestError, Segment, SpeechResult, TranscriptionInfo
from playground import engines
from playground.studio.selectors import model_spec_for_task
from playground.usage.services import metering_for

SPEECH_MAX_BYTES = 25 * 1024 * 1024  # what an upload or a recording may weigh
TTS_MAX_CHARACTERS = 1000  # the WAV comes back inline; keep the page a sensible size
EMBEDDINGS_MAX_TEXTS = 32
EMBEDDINGS_MAX_CHARACTERS = 20_000


class AudioTooLargeError(InvalidRequestError):
    code = "audio_too_large"


@dataclass(frozen=True)
class TranscriptionEnd:
    """The last item of a transcription stream: how much audio, and how long decoding took (model load excluded)."""

    audio_seconds: float
    processing_seconds: float

    @property
    def real_time_factor(self) -> float | None:
        return self.processing_seconds / self.audio_seconds if self.audio_seconds > 0 else None


TranscriptionItem = TranscriptionInfo | Segment | TranscriptionEnd


def transcription_stream(
    *, model_id: str, audio: bytes, task: str = "transcribe", language: str | None = None
) -> Job[TranscriptionItem]:
    """Queue a transcription. The job yields one TranscriptionInfo, each Segment as it is decoded, then a
    TranscriptionEnd. Undecodable audio raises AudioDecodeError from the job before anything is yielded."""
    model_spec_for_task(model_id=model_id, task="speech-to-text")
    if not audio:
        raise InvalidRequestError("the audio is empty")
    if len(audio) > SPEECH_MAX_BYTES:
        raise AudioTooLargeError(
            f"the audio is {len(audio) / 1024 / 1024:.1f} MB; the limit is {SPEECH_MAX_BYTES // 1024 // 1024} MB"
        )
    if task not in ("transcribe", "translate"):
        raise InvalidRequestError("task must be 'transcribe' or 'translate'")

    def run(engine: Any, stop: threading.Event) -> Iterator[TranscriptionItem]:
        started = time.monotonic()  # the engine is loaded by now: the factor measures decoding only
        info, segments = engine.transcribe(audio, language=language or None, task=task, stop_event=stop)
        yield info
        for segment in segments:
            if stop.is_set():
                return
            yield segment
        yield TranscriptionEnd(audio_seconds=info.duration, processing_seconds=time.monotonic() - started)

    return engines.get_pool().submit(model_id, run, metering_for(model_id=model_id))


def transcription_stats_record(*, model_id: str, end: TranscriptionEnd) -> None:
    """Fold a finished transcription's speed into the model card (sync ORM)."""
    from playground.catalog.services import model_stats_record

    factor = end.real_time_factor
    if factor is not None:
        model_stats_record(model_id=model_id, real_time_factor=factor)


def embeddings_create(*, model_id: str, texts: list[str]) -> EmbeddingResult:
    """Embed each text; vectors come back L2-normalised."""
    model_spec_for_task(model_id=model_id, task="embeddings")
    if not texts:
        raise InvalidRequestError("enter at least one text")
    if len(texts) > EMBEDDINGS_MAX_TEXTS:
        raise InvalidRequestError(f"{len(texts)} texts; the limit is {EMBEDDINGS_MAX_TEXTS}")
    return engines.get_pool().call(model_id, lambda engine: engine.embed(texts), metering_for(model_id=model_id))


def speech_synthesize(*, model_id: str, text: str, speed: float = 1.0) -> SpeechResult:
    """Text to a 16-bit WAV."""
    model_spec_for_task(model_id=model_id, task="text-to-speech")
    text = text.strip()
    if not text:
        raise InvalidRequestError("text must not be empty")
    if len(text) > TTS_MAX_CHARACTERS:
        raise InvalidRequestError(f"text is {len(text)} characters; the limit here is {TTS_MAX_CHARACTERS}")
    if not 0.25 <= speed <= 4.0:
        raise InvalidRequestError("speed must be between 0.25 and 4.0")
    return engines.get_pool().call(
        model_id, lambda engine: engine.synthesize(text, speed=speed), metering_for(model_id=model_id)
    )
