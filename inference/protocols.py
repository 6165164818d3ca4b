"""What the pool and the site may ask of each kind of engine.

The real engines (inference/text.py, batching.py, speech.py) and the fakes (inference/fake.py) satisfy these
structurally; mypy checks that where build_engine returns them. Read-only attributes are declared as
properties, so a plain attribute, a class attribute or a property all fit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from inference.types import (
    ChatMessage,
    EmbeddingResult,
    Overflow,
    SamplingParams,
    Segment,
    SpeechResult,
    TextChunk,
    Tool,
    TranscriptionInfo,
    TranscriptionResult,
)

Audio = bytes | str | Path | BinaryIO  # the encoded file's bytes, a path to it, or an open binary file


class TextEngine(Protocol):
    """Chat (through the model's own template) and plain completion, streamed as TextChunks.

    Both check the request when called (a refusal raises then) and return the stream; its last chunk carries the
    finish reason and usage. Setting `stop_event` ends the stream within one token ("cancelled")."""

    @property
    def n_ctx(self) -> int: ...

    @property
    def has_chat_template(self) -> bool: ...

    def count_tokens(self, text: str) -> int: ...

    def chat(
        self,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        stop_event: threading.Event | None = None,
        tools: Sequence[Tool] = (),
        overflow: Overflow = "refuse",
        continue_final: bool = False,
    ) -> Iterator[TextChunk]: ...

    def count_chat_tokens(self, messages: Sequence[ChatMessage], tools: Sequence[Tool] = ()) -> int: ...

    def complete(
        self, prompt: str, params: SamplingParams, stop_event: threading.Event | None = None
    ) -> Iterator[TextChunk]: ...


class EmbeddingEngine(Protocol):
    """One L2-normalised vector of `dimensions` floats per text, in order."""

    @property
    def n_ctx(self) -> int: ...

    @property
    def dimensions(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def embed(self, texts: Sequence[str], stop_event: threading.Event | None = None) -> EmbeddingResult: ...


class SpeechToTextEngine(Protocol):
    """`transcribe` decodes the audio when called (a bad file raises AudioDecodeError then) and yields segments
    lazily, checking `stop_event` between them; `transcribe_all` collects them with their usage. `task` is
    "transcribe" or "translate" (into English); anything else, or translating on an English-only model
    (`multilingual` false), is refused with InvalidRequestError."""

    @property
    def multilingual(self) -> bool: ...

    def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None = None,
        task: str = "transcribe",
        stop_event: threading.Event | None = None,
        max_seconds: float | None = None,
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]: ...

    def transcribe_all(
        self, audio: Audio, *, language: str | None = None, task: str = "transcribe"
    ) -> TranscriptionResult: ...


class TextToSpeechEngine(Protocol):
    """Text in (at most `max_characters`), a 16-bit mono WAV out."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def max_characters(self) -> int: ...

    def synthesize(
        self, text: str, *, speed: float = 1.0, stop_event: threading.Event | None = None
    ) -> SpeechResult: ...


# What a model's worker holds: which one follows from the model's task (see inference.pool.build_engine).
Engine = TextEngine | EmbeddingEngine | SpeechToTextEngine | TextToSpeechEngine
