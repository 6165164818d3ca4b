"""Requests, chunks and results exchanged with the engines.

Plain frozen dataclasses: every result carries its own usage so callers can
account for it without asking the engine again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "cancelled"]
# What a chat does when its messages and max_tokens do not fit the context: refuse (ContextOverflowError), or
# leave out the oldest exchanges after the system prompt until they fit (never the last user message).
Overflow = Literal["refuse", "drop_oldest"]


class EngineError(Exception):
    """Base class for errors an engine reports to its caller."""

    code = "engine_error"


class InvalidRequestError(EngineError):
    """The request itself is wrong (bad parameter, empty text, ...). ``param`` names the culprit when known."""

    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class InvalidParameterError(InvalidRequestError):
    """A parameter's value is outside its range (see RANGES). The message is "<param> <detail>"."""

    code = "invalid_parameter"

    def __init__(self, param: str, detail: str) -> None:
        super().__init__(f"{param} {detail}", param=param)
        self.detail = detail

    def renamed(self, param: str) -> InvalidParameterError:
        """The same refusal, naming the parameter as a dialect calls it (e.g. TGI's parameters.max_new_tokens)."""
        return InvalidParameterError(param, self.detail)


class ContextOverflowError(InvalidRequestError):
    """The prompt plus the requested max tokens does not fit the context window."""

    code = "context_length_exceeded"


class AudioDecodeError(InvalidRequestError):
    """The audio could not be decoded."""

    code = "invalid_audio"


class AudioTooLongError(InvalidRequestError):
    """The audio lasts longer than the caller's limit (read from the container, or counted while decoding)."""

    code = "audio_too_long"


class QueueFullError(EngineError):
    """The model's waiting queue is at its bound; the caller should retry later."""

    code = "queue_full"


class RateLimitedError(QueueFullError):
    """The caller's share of a model is used up (e.g. its requests waiting); retry after `retry_after` seconds.

    A QueueFullError too, so whoever waits and retries on a full queue (the bulk worker) does so here as well."""

    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnsupportedRequestError(InvalidRequestError):
    """A field this model cannot honour (e.g. tools sent to a remote model)."""

    code = "unsupported_parameter"


class UpstreamUnavailableError(QueueFullError):
    """No upstream server of a remote model could take the request (all down, refusing or timing out). A
    QueueFullError too, so whoever waits and retries on a full queue (the bulk worker) does so here as well."""

    code = "upstream_unavailable"


class UpstreamError(EngineError):
    """A remote model's upstream failed after its reply had begun (it broke off, or sent something unreadable)."""

    code = "upstream_error"


class ModelLoadError(EngineError):
    """The model's weights could not be loaded."""

    code = "model_load_failed"


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and its arguments as a JSON Schema."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCall:
    """A call the model made (or, in a history, had made): `arguments` is the JSON text of the arguments."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    """One turn. An assistant turn may carry `tool_calls`; a "tool" turn is the result of the call
    `tool_call_id` names (inference/tools.py renders both for models whose template knows no tools)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Range:
    """The values one sampling parameter accepts. RANGES is the one table of them: SamplingParams, every API
    dialect, the Playground's form and the API descriptions (OpenAPI, /api/, the card's API tab) read it."""

    name: str
    kind: Literal["number", "integer"]
    low: float
    high: float | None  # None: bounded by the model (max_tokens: its context)
    description: str
    low_open: bool = False  # low itself is refused
    step: float = 1  # the Playground slider's step
    slider_high: float | None = None  # where the slider ends when the range is wider than a slider can show

    def text(self, high: float | None = None) -> str:
        """The accepted values in words: "a number from 0 to 2"."""
        high = self.high if high is None else high
        noun = "an integer" if self.kind == "integer" else "a number"
        low = f"above {_number(self.low)}" if self.low_open else f"from {_number(self.low)}"
        if high is None:
            return f"{noun} {'above' if self.low_open else 'of at least'} {_number(self.low)}"
        return f"{noun} {low} {'and at most' if self.low_open else 'to'} {_number(high)}"

    def accepts(self, value: object, high: float | None = None) -> bool:
        high = self.high if high is None else high
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "integer" and not (isinstance(value, int) or float(value).is_integer()):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and (high is None or value <= high)

    def check(self, value: object, *, field: str | None = None, high: float | None = None) -> None:
        """Refuse a value outside the range: InvalidParameterError naming `field` (the dialect's name for it)."""
        if not self.accepts(value, high):
            shown = _number(value) if isinstance(value, int | float) and not isinstance(value, bool) else repr(value)
            raise InvalidParameterError(field or self.name, f"must be {self.text(high)} (got {shown})")


MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 256  # characters in one stop sequence (the scanner holds back that much text)
RANGES: dict[str, Range] = {
    r.name: r
    for r in (
        Range(
            "temperature",
            "number",
            0,
            2,
            "Sampling temperature; 0 is greedy (deterministic), higher is more random.",
            step=0.05,
        ),
        Range(
            "top_p",
            "number",
            0,
            1,
            "Nucleus sampling: keep the smallest set of tokens whose probabilities add up to top_p.",
            step=0.01,
        ),
        Range(
            "top_k", "integer", 0, 100_000, "Keep only the k most likely tokens; 0 disables the limit.", slider_high=200
        ),
        Range(
            "min_p",
            "number",
            0,
            1,
            "Drop tokens less likely than min_p times the most likely one; 0 disables it.",
            step=0.01,
        ),
        Range(
            "max_tokens",
            "integer",
            1,
            None,
            "The most tokens to generate; prompt plus output must fit in the model's context.",
        ),
        Range(
            "presence_penalty",
            "number",
            -2,
            2,
            "Penalise tokens that already appeared, to encourage new topics.",
            step=0.05,
        ),
        Range("frequency_penalty", "number", -2, 2, "Penalise tokens by how often they already appeared.", step=0.05),
        Range(
            "repetition_penalty",
            "number",
            0,
            2,
            "llama.cpp's repeat penalty; 1 is neutral, above 1 discourages repeats.",
            low_open=True,
            step=0.01,
        ),
        Range("seed", "integer", 0, 2**32 - 1, "The same seed and parameters give the same output; left out: random."),
    )
}


@dataclass(frozen=True)
class SamplingParams:
    """Every knob that reaches llama.cpp's sampler. Values are checked against RANGES here."""

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
    grammar: str | None = None  # GBNF the reply must match (inference/grammar.py builds it); None: unconstrained
    # With a grammar: the reply is free text until this text appears in it; from there on the grammar holds (its
    # root must start with this text). A tool call in `auto` mode: inference/tools.py.
    grammar_trigger: str | None = None

    def __post_init__(self) -> None:
        for name, range_ in RANGES.items():
            value = getattr(self, name)
            if value is not None or name not in ("max_tokens", "seed"):
                range_.check(value)
        check_stop(self.stop)


def check_stop(stop: object, *, field: str = "stop") -> tuple[str, ...]:
    """Stop sequences: a string or a list of at most MAX_STOP_SEQUENCES non-empty strings."""
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list | tuple) or not all(isinstance(s, str) for s in stops):
        raise InvalidParameterError(field, "must be a string or a list of strings")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidParameterError(field, f"may hold at most {MAX_STOP_SEQUENCES} sequences (got {len(stops)})")
    if not all(stops):
        raise InvalidParameterError(field, "must not contain an empty sequence")
    if any(len(stop) > MAX_STOP_LENGTH for stop in stops):
        raise InvalidParameterError(field, f"sequences may be at most {MAX_STOP_LENGTH} characters long")
    return tuple(stops)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    audio_seconds: float = 0.0
    characters: int = 0
    estimated: bool = False  # a remote model's upstream sent no usage and no tokenizer was at hand to count it

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TextChunk:
    """One piece of a streamed reply. The last chunk has a finish reason and usage.

    When a stop sequence ended the reply, the last chunk's ``stop_sequence`` is the one that matched
    (finish reason "stop", the text ends before it); an end-of-generation token leaves it None.
    """

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    stop_sequence: str | None = None
    dropped_messages: int = 0  # the last chunk of a chat: the oldest messages left out so the rest fit (Overflow)


@dataclass(frozen=True)
class TextResult:
    text: str
    finish_reason: FinishReason
    usage: Usage
    stop_sequence: str | None = None  # the stop sequence that ended the reply, as on TextChunk


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
class TranscriptionEnd:
    """The last item of a streamed transcription: how much audio, and how long decoding took (load excluded)."""

    audio_seconds: float
    processing_seconds: float

    @property
    def real_time_factor(self) -> float | None:
        return self.processing_seconds / self.audio_seconds if self.audio_seconds > 0 else None


@dataclass(frozen=True)
class TranscriptionResult:
    text: str
    language: str
    segments: list[Segment] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    @classmethod
    def collect(cls, info: TranscriptionInfo, segments: Iterable[Segment]) -> TranscriptionResult:
        """A transcription's segments gathered, with its text and usage (what every engine's transcribe_all gives)."""
        parts = list(segments)
        return cls(
            text=" ".join(p.text for p in parts).strip(),
            language=info.language,
            segments=parts,
            usage=Usage(audio_seconds=info.duration),
        )


SPEECH_SPEED = Range("speed", "number", 0.25, 4.0, "How fast the voice speaks; 1 is its natural pace.", step=0.05)


@dataclass(frozen=True)
class SpeechResult:
    wav: bytes  # 16-bit PCM WAV
    sample_rate: int
    duration: float
    usage: Usage
