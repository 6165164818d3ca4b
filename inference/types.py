"""Requests, chunks and results exchanged with the engines.

Plain frozen dataclasses: every result carries its own usage so callers can
account for it without asking the engine again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length", "cancelled"]


class EngineError(Exception):
    """Base class for errors an engine reports to its caller."""

    code = "engine_error"


class InvalidRequestError(EngineError):
    """The request itself is wrong (bad parameter, empty text, ...)."""

    code = "invalid_request"


class ContextOverflowError(InvalidRequestError):
    """The prompt plus the requested max tokens does not fit the context window."""

    code = "context_length_exceeded"


class AudioDecodeError(InvalidRequestError):
    """The audio could not be decoded."""

    code = "invalid_audio"


class QueueFullError(EngineError):
    """The model's waiting queue is at its bound; the caller should retry later."""

    code = "queue_full"


class ModelLoadError(EngineError):
    """The model's weights could not be loaded."""

    code = "model_load_failed"


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class SamplingParams:
    """Every knob that reaches llama.cpp's sampler. Values are validated here."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0  # 0 = disabled (whole vocabulary)
    min_p: float = 0.0
    max_tokens: int | None = 256  # None = as many as the context allows
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    seed: int | None = None  # None = random
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool]] = [
            ("temperature must be between 0 and 2", 0.0 <= self.temperature <= 2.0),
            ("top_p must be between 0 and 1", 0.0 <= self.top_p <= 1.0),
            ("top_k must be 0 or more", self.top_k >= 0),
            ("min_p must be between 0 and 1", 0.0 <= self.min_p <= 1.0),
            ("max_tokens must be at least 1", self.max_tokens is None or self.max_tokens >= 1),
            ("presence_penalty must be between -2 and 2", -2.0 <= self.presence_penalty <= 2.0),
            ("frequency_penalty must be between -2 and 2", -2.0 <= self.frequency_penalty <= 2.0),
            ("repetition_penalty must be between 0 and 2", 0.0 < self.repetition_penalty <= 2.0),
            ("seed must be between 0 and 2**32-1", self.seed is None or 0 <= self.seed < 2**32),
            ("at most 4 stop sequences", len(self.stop) <= 4),
            ("stop sequences must not be empty", all(self.stop)),
        ]
        for message, ok in checks:
            if not ok:
                raise InvalidRequestError(message)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    audio_seconds: float = 0.0
    characters: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TextChunk:
    """One piece of a streamed reply. The last chunk has a finish reason and usage."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class TextResult:
    text: str
    finish_reason: FinishReason
    usage: Usage


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    usage: Usage


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class TranscriptionInfo:
    language: str
    language_probability: float
    duration: float  # seconds of audio


@dataclass(frozen=True)
class TranscriptionResult:
    text: str
    language: str
    segments: list[Segment] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class SpeechResult:
    wav: bytes  # 16-bit PCM WAV
    sample_rate: int
    duration: float
    usage: Usage
