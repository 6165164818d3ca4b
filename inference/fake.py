"""Deterministic fake engines for fast tests of everything above the engine.

They follow the real engines' contracts (validation, finish reasons, usage,
stop flag) and record what they were asked in ``calls``.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import re
import threading
import time
import wave
from collections.abc import Iterator, Sequence
from typing import Any

from inference.text import StopScanner, fit_messages, with_dropped
from inference.types import (
    AudioDecodeError,
    AudioTooLongError,
    ChatMessage,
    ContextOverflowError,
    EmbeddingResult,
    FinishReason,
    InvalidRequestError,
    Overflow,
    SamplingParams,
    Segment,
    SpeechResult,
    TextChunk,
    Tool,
    TranscriptionInfo,
    TranscriptionResult,
    Usage,
)

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


def _tokens(text: str) -> list[str]:
    return text.split()


GRAMMAR_REPLY = '{"answer": "fake"}'


class FakeTextEngine:
    """Replies 'You said: <last user message>' then seeded filler words, one word per token.

    With `params.grammar` set, it replies `grammar_reply` instead (default `{"answer": "fake"}`; set it to text
    your grammar or schema accepts), exactly, one token per word with the whitespace before it (`{"answer":` and
    ` "fake"}`), so max_tokens can cut it short (finish "length", the JSON then incomplete). The grammar is not
    checked here, only recorded: `calls[-1]["grammar"]`.
    """

    has_chat_template = True

    def __init__(
        self, *, n_ctx: int = 2048, delay: float = 0.0, chat: bool = True, grammar_reply: str = GRAMMAR_REPLY
    ) -> None:
        self.n_ctx = n_ctx
        self.delay = delay
        self.has_chat_template = chat
        self.grammar_reply = grammar_reply
        self.calls: list[dict[str, Any]] = []
        self.generated: list[int] = []  # tokens each finished stream produced (a stopped one: fewer)

    def count_tokens(self, text: str) -> int:
        return len(_tokens(text))

    def chat(
        self,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        stop_event: threading.Event | None = None,
        tools: Sequence[Tool] = (),
        overflow: Overflow = "refuse",
        continue_final: bool = False,
    ) -> Iterator[TextChunk]:
        if not self.has_chat_template:
            raise InvalidRequestError("this model has no chat template; use plain completion instead")
        if not messages:
            raise InvalidRequestError("messages must not be empty")
        prefix: list[str] = []
        if continue_final and messages[-1].role == "assistant":  # the reply goes on: "... and so on"
            prefix, messages = _tokens(messages[-1].content), messages[:-1]
        words, kept = fit_messages(
            messages,
            lambda turns: self._prompt(turns) + prefix,
            n_ctx=self.n_ctx,
            max_tokens=params.max_tokens,
            overflow=overflow,
        )
        self.calls.append(
            {
                "kind": "chat",
                "messages": list(kept),
                "params": params,
                "grammar": params.grammar,
                "tools": tools,
                "continued": " ".join(prefix),
            }
        )
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        lead = " and so on" if prefix else f"You said: {last}"
        stream = self._generate(len(words), lead, params, stop_event)
        return with_dropped(stream, len(messages) - len(kept))

    def _prompt(self, messages: Sequence[ChatMessage]) -> list[str]:
        """One "token" per word of each message, and two per message for the template."""
        return [word for m in messages for word in [*_tokens(m.content), "<|", "|>"]]

    def count_chat_tokens(self, messages: Sequence[ChatMessage], tools: Sequence[Tool] = ()) -> int:
        return len(self._prompt(messages))

    def complete(
        self, prompt: str, params: SamplingParams, stop_event: threading.Event | None = None
    ) -> Iterator[TextChunk]:
        if not prompt:
            raise InvalidRequestError("prompt must not be empty")
        self.calls.append({"kind": "complete", "prompt": prompt, "params": params, "grammar": params.grammar})
        return self._generate(len(_tokens(prompt)) + 1, "and then", params, stop_event)

    def _generate(
        self, n_prompt: int, lead: str, params: SamplingParams, stop_event: threading.Event | None
    ) -> Iterator[TextChunk]:
        max_tokens = params.max_tokens if params.max_tokens is not None else self.n_ctx - n_prompt
        if n_prompt + max_tokens > self.n_ctx:
            raise ContextOverflowError(
                f"the prompt is {n_prompt} tokens and max_tokens is {max_tokens}: more than the context of {self.n_ctx}"
            )
        stop_event = stop_event or threading.Event()
        rng = random.Random(params.seed if params.seed is not None else random.randrange(2**32))
        words = _tokens(lead) + [rng.choice(WORDS) for _ in range(12)]
        pieces = [("" if n == 0 else " ") + word for n, word in enumerate(words)]
        if params.grammar is not None:
            pieces = re.findall(r"\s*\S+", self.grammar_reply)  # exact text: each piece keeps the space before it

        def stream() -> Iterator[TextChunk]:
            scanner = StopScanner(params.stop)
            finish: FinishReason = "stop"
            stop_sequence: str | None = None
            completion = 0
            for piece in pieces:
                if stop_event.is_set():
                    finish = "cancelled"
                    break
                if completion >= max_tokens:
                    finish = "length"
                    break
                if self.delay:
                    time.sleep(self.delay)
                completion += 1
                text, stop_sequence = scanner.feed(piece)
                if text:
                    yield TextChunk(text)
                if stop_sequence is not None:
                    break
            tail = scanner.flush() if stop_sequence is None else ""
            self.generated.append(completion)
            usage = Usage(prompt_tokens=n_prompt, completion_tokens=completion)
            yield TextChunk(tail, finish, usage, stop_sequence=stop_sequence)

        return stream()


class FakeEmbeddingEngine:
    dimensions = 8
    n_ctx = 512

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def count_tokens(self, text: str) -> int:
        return len(_tokens(text)) + 2

    def embed(self, texts: Sequence[str], stop_event: threading.Event | None = None) -> EmbeddingResult:
        if not texts:
            raise InvalidRequestError("input must contain at least one text")
        for index, text in enumerate(texts):
            if not isinstance(text, str) or not text:
                raise InvalidRequestError(f"input[{index}] must be a non-empty string")
        self.calls.append(list(texts))
        vectors = []
        for text in texts:
            if stop_event is not None and stop_event.is_set():
                raise InvalidRequestError("the embedding was stopped before it finished")
            digest = hashlib.sha256(text.encode()).digest()
            raw = [b - 127.5 for b in digest[: self.dimensions]]
            norm = math.sqrt(sum(v * v for v in raw))
            vectors.append([v / norm for v in raw])
        return EmbeddingResult(vectors=vectors, usage=Usage(prompt_tokens=sum(self.count_tokens(t) for t in texts)))


class FakeSpeechToTextEngine:
    """'Audio' is UTF-8 text prefixed with b'FAKEAUDIO:'; one segment per sentence, 1 s per word."""

    multilingual = True

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def transcribe(
        self,
        audio: Any,
        *,
        language: str | None = None,
        task: str = "transcribe",
        stop_event: threading.Event | None = None,
        max_seconds: float | None = None,
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        data = audio if isinstance(audio, bytes) else audio.read()
        if not data.startswith(b"FAKEAUDIO:"):
            raise AudioDecodeError("the audio could not be decoded: not fake audio")
        self.calls.append({"language": language, "task": task})
        sentences = [s.strip() for s in data[10:].decode().split(".") if s.strip()]
        segments, start = [], 0.0
        for n, sentence in enumerate(sentences):
            end = start + len(sentence.split())
            segments.append(Segment(id=n, start=start, end=end, text=sentence + "."))
            start = end
        if max_seconds is not None and start > max_seconds:
            raise AudioTooLongError(f"the audio lasts {start:.1f} s; the limit here is {max_seconds:.1f} s")
        info = TranscriptionInfo(language=language or "en", language_probability=1.0, duration=start)
        return info, iter(segments)

    def transcribe_all(
        self, audio: Any, *, language: str | None = None, task: str = "transcribe"
    ) -> TranscriptionResult:
        return TranscriptionResult.collect(*self.transcribe(audio, language=language, task=task))


class FakeTextToSpeechEngine:
    """Silence: 0.05 s per character at speed 1, as a real 16-bit WAV."""

    sample_rate = 16000
    max_characters = 4096

    def synthesize(self, text: str, *, speed: float = 1.0, stop_event: threading.Event | None = None) -> SpeechResult:
        text = (text or "").strip()
        if not text:
            raise InvalidRequestError("text must not be empty")
        if len(text) > self.max_characters:
            raise InvalidRequestError(f"text is {len(text)} characters; the limit is {self.max_characters}")
        frames = int(len(text) * 0.05 / speed * self.sample_rate)
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(b"\x00\x00" * frames)
        return SpeechResult(
            wav=buffer.getvalue(),
            sample_rate=self.sample_rate,
            duration=frames / self.sample_rate,
            usage=Usage(characters=len(text)),
        )
