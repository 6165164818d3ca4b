"""Speech-to-text, embeddings and text-to-speech for the Playground: its own limits, then the one path to the model
(playground/serving.py) that the API takes too: the same look-up, time limit, cancellation and metering."""

from __future__ import annotations

from django.conf import settings

from inference import Job
from inference.types import EmbeddingResult, SpeechResult
from playground import serving
from playground.contract.errors import Problem
from playground.serving import TranscriptionItem

SPEECH_MAX_BYTES = 25 * 1024 * 1024  # what an upload or a recording may weigh
TTS_MAX_CHARACTERS = 1000  # the WAV comes back inline; keep the page a sensible size
EMBEDDINGS_MAX_TEXTS = 32
EMBEDDINGS_MAX_CHARACTERS = 20_000


def audio_too_large(size: int) -> Problem:
    return Problem(
        "audio_too_large",
        f"the audio is {size / 1024 / 1024:.1f} MB; the limit is {SPEECH_MAX_BYTES // 1024 // 1024} MB",
        param="file",
    )


def transcription_stream(
    *, model_id: str, audio: bytes, task: str = "transcribe", language: str | None = None
) -> Job[TranscriptionItem]:
    """Queue a transcription: one TranscriptionInfo, each Segment as it is decoded, then a TranscriptionEnd.
    Iterate it through serving.Run (the time limit)."""
    spec = serving.model_for(model_id=model_id, tasks=("speech-to-text",), where="the speech Playground")
    if len(audio) > SPEECH_MAX_BYTES:
        raise audio_too_large(len(audio))
    if task not in ("transcribe", "translate"):
        raise Problem("invalid_parameter", "task must be 'transcribe' or 'translate'", param="task")
    return serving.transcription_job(
        model_id=spec.id,
        audio=audio,
        task=task,
        language=language,
        max_seconds=settings.PLAYGROUND_STUDIO_MAX_AUDIO_SECONDS,
    )


def embeddings_create(*, model_id: str, texts: list[str]) -> EmbeddingResult:
    """Embed each text (blocking); vectors come back L2-normalised."""
    spec = serving.model_for(model_id=model_id, tasks=("embeddings",), where="the embeddings Playground")
    if not texts:
        raise Problem("invalid_parameter", "enter at least one text", param="input")
    if len(texts) > EMBEDDINGS_MAX_TEXTS:
        raise Problem("invalid_parameter", f"{len(texts)} texts; the limit is {EMBEDDINGS_MAX_TEXTS}", param="input")
    return serving.run_all(serving.embeddings_job(model_id=spec.id, texts=texts))[0]


def speech_synthesize(*, model_id: str, text: str, speed: float = 1.0) -> SpeechResult:
    """Text to a 16-bit WAV (blocking)."""
    spec = serving.model_for(model_id=model_id, tasks=("text-to-speech",), where="the speech Playground")
    text = text.strip()
    if not text:
        raise Problem("invalid_parameter", "text must not be empty", param="input")
    if len(text) > TTS_MAX_CHARACTERS:
        raise Problem(
            "invalid_parameter",
            f"text is {len(text)} characters; the limit here is {TTS_MAX_CHARACTERS}",
            param="input",
        )
    return serving.run_all(serving.speech_job(model_id=spec.id, text=text, speed=speed))[0]
