"""The OpenAI dialect (/v1): every request and response body as a typed model.

Choices where OpenAI's contract is silent or does not fit a local server (the field descriptions say them too):

- Unknown fields are refused (``unknown_parameter``). OpenAI fields we cannot honour (logit_bias, audio, ...) are
  accepted only when null or at their neutral value (NEUTRAL), otherwise ``unsupported_parameter``.
- Tools: functions only; each call's arguments always validate against the function's parameters (a grammar
  holds while decoding, with or without ``strict``). ``response_format`` beside active tools is refused.
- ``top_k``, ``min_p`` and ``repetition_penalty`` are extensions (the openai SDK sends them in ``extra_body``);
  ``developer`` messages are system messages. Sampling values left out take the model's catalog defaults.
- Speech-to-text refuses ``temperature`` and ``prompt`` (faster-whisper's temperature fallback, no prompt
  conditioning). Text-to-speech maps OpenAI's voice names onto the model's one voice.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from inference.audioformat import FORMATS
from inference.tools import MAX_PARALLEL_CALLS, ToolUse
from inference.types import SPEECH_SPEED, Tool, ToolCall
from playground.contract.errors import Problem
from playground.contract.fields import STOP_SCHEMA, Body, SamplingInt, only, sampling, stop_sequences

EMBEDDINGS_MAX_INPUTS = 2048
SPEECH_MAX_CHARACTERS = 4096
STT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
SERVICE_TIERS = ("auto", "default", "gpu", "gpuflex")
# OpenAI's voice names, accepted so that clients written for OpenAI work unchanged: each speaks with the model's voice.
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "cedar",
    "coral",
    "echo",
    "fable",
    "marin",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)
# OpenAI fields we know but cannot honour: accepted only when null or the neutral value given here (tools: on
# /v1/completions, which has none).
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "logit_bias": ({},),
    "tools": ([],),
    "tool_choice": ("none",),
    "parallel_tool_calls": (),
    "functions": ([],),
    "function_call": ("none",),
    "metadata": ({},),
    "store": (False,),
    "modalities": (["text"],),
    "audio": (),
    "prediction": (),
    "reasoning_effort": (),
    "web_search_options": (),
    "verbosity": (),
    "prompt_cache_key": (),
    "safety_identifier": (),
}

MODEL = Field(description="The model id (GET /v1/models lists them).")
SERVICE_TIER = Field(
    default=None,
    description="auto/default run where the model runs; gpu/gpuflex insist on the GPU (400 tier_unavailable when "
    "the model does not run on one). Also accepted as the query parameter ?serviceTier=. The response says where "
    "it ran (service_tier and the X-Service-Tier header).",
    json_schema_extra={"enum": list(SERVICE_TIERS)},
)
USER = Field(default=None, description="Accepted and ignored.")


class _OpenAIBody(Body):
    where: ClassVar[str] = "/v1"

    @model_validator(mode="before")
    @classmethod
    def _neutral(cls, data: Any) -> Any:
        """OpenAI fields this server cannot honour pass only at their neutral value, and are then dropped."""
        if not isinstance(data, dict):
            return data
        kept = {}
        for key, value in data.items():
            if key in NEUTRAL and key not in cls.model_fields:
                if value is None or value in NEUTRAL[key]:
                    continue
                raise Problem("unsupported_parameter", f"{key} is not supported by {cls.where}", param=key)
            kept[key] = value
        return kept


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    arguments: str = Field(description="The arguments as JSON text.")


class MessageToolCall(BaseModel):
    """A call an earlier assistant turn made (as this server returned it)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    type: Literal["function"]
    function: FunctionCall


class ChatMessage(BaseModel):
    """One turn. ``developer`` is OpenAI's newer name for ``system``; content may be a list of text parts. An
    assistant turn may carry ``tool_calls`` (content then may be null); a ``tool`` turn answers the call its
    ``tool_call_id`` names. Fields the openai SDK sends back with an earlier reply (refusal, annotations) are
    accepted and ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = Field(default=None, description="Accepted and ignored.")
    tool_calls: list[MessageToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None
    annotations: list[Any] | None = None
    function_call: None = None
    audio: None = None

    def check(self, at: str) -> None:
        """Content unless an assistant turn has calls; calls only on assistant turns; a tool turn's call id."""
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise Problem(
                "missing_required_parameter", f"{at}: a {self.role} message needs content", param=f"{at}.content"
            )
        if self.tool_calls and self.role != "assistant":
            raise Problem(
                "invalid_parameter", f"{at}: only assistant messages carry tool_calls", param=f"{at}.tool_calls"
            )
        if self.role == "tool" and not self.tool_call_id:
            raise Problem(
                "missing_required_parameter",
                f"{at}: a tool message needs the tool_call_id it answers",
                param=f"{at}.tool_call_id",
            )

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content)

    def engine_role(self) -> Literal["system", "user", "assistant", "tool"]:
        return "system" if self.role == "developer" else self.role

    def engine_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments) for c in self.tool_calls or ()
        )


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(description="1 to 64 letters, digits, _ or -; unique among the tools.")
    description: str | None = None
    parameters: dict[str, Any] | None = Field(
        default=None, description="A JSON Schema object; left out: the function takes no arguments."
    )
    strict: bool | None = Field(default=None, description="Accepted; arguments always match the schema here.")


class ToolDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["function"]
    function: FunctionName


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(description="The schema's name (as the openai SDK sends it).")
    schema_: dict[str, Any] = Field(alias="schema", description="A JSON Schema the reply must validate against.")
    strict: bool | None = Field(default=None, description="Accepted; the reply always matches the schema here.")
    description: str | None = None


class ResponseFormat(BaseModel):
    """What the reply must be: free text, any JSON object, or JSON valid against a schema (enforced with a
    grammar while decoding, so even a small model can only produce matching JSON)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise Problem(
                "missing_required_parameter",
                "response_format.json_schema is required with type json_schema",
                param="response_format.json_schema",
            )
        return self


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    include_usage: bool | None = Field(
        default=None, description="Send one more chunk before [DONE] with usage and empty choices."
    )


RESPONSE_FORMAT = Field(
    default=None,
    description='{"type": "json_object"}: the reply is a JSON object; {"type": "json_schema", "json_schema": '
    '{"name", "schema"}}: the reply is JSON valid against the schema (finish_reason "length" if it was cut '
    "short). Enforced with a grammar while decoding.",
)


class ChatTools(BaseModel):
    """A chat's tools and reply format: the fields of /v1/chat/completions that the Playground's socket takes too."""

    tools: list[ToolDefinition] | None = Field(
        default=None,
        description="Functions the model may call. Each call's arguments validate against the function's "
        "parameters (a grammar holds while decoding).",
    )
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = Field(
        default=None,
        description="auto (default with tools): the model decides; none: it answers in text; required: it calls "
        'one or more tools; {"type": "function", "function": {"name"}}: it calls that one.',
    )
    parallel_tool_calls: bool | None = Field(
        default=None, description=f"Default true: up to {MAX_PARALLEL_CALLS} calls in one reply; false: one."
    )
    response_format: ResponseFormat | None = RESPONSE_FORMAT

    def tool_use(self) -> ToolUse | None:
        """The tools and how they may be used; None when the request names none."""
        if not self.tools and self.tool_choice is None:
            return None
        choice = self.tool_choice or "auto"
        tools = tuple(
            Tool(t.function.name, t.function.description or "", t.function.parameters or {}) for t in self.tools or ()
        )
        name = choice if isinstance(choice, str) else choice.function.name
        return ToolUse(tools=tools, choice=name, parallel=self.parallel_tool_calls is not False)


class PlaygroundTools(ChatTools, Body):
    """The tool fields of a Playground socket frame, checked exactly as /v1/chat/completions checks them."""

    model_config = ConfigDict(extra="ignore", strict=True)
    where: ClassVar[str] = "ws/chat"


class _TextRequest(_OpenAIBody):
    model: str = MODEL
    temperature: float | None = sampling("temperature", extra="Left out: the model's catalog default.")
    top_p: float | None = sampling("top_p")
    top_k: SamplingInt = sampling("top_k", extra="Extension to the OpenAI API.")
    min_p: float | None = sampling("min_p", extra="Extension to the OpenAI API.")
    max_tokens: SamplingInt = sampling("max_tokens")
    presence_penalty: float | None = sampling("presence_penalty")
    frequency_penalty: float | None = sampling("frequency_penalty")
    repetition_penalty: float | None = sampling("repetition_penalty", extra="Extension to the OpenAI API.")
    seed: SamplingInt = sampling("seed")
    stop: Annotated[Any, BeforeValidator(stop_sequences)] = Field(default=None, json_schema_extra=STOP_SCHEMA)
    stream: bool | None = Field(default=None, description="true: server-sent events (text/event-stream).")
    stream_options: StreamOptions | None = Field(default=None, description="Only with stream: true.")
    service_tier: str | None = SERVICE_TIER
    user: str | None = USER
    n: int | None = Field(default=None, description="Only 1: one choice per request.")
    response_format: ResponseFormat | None = RESPONSE_FORMAT

    @model_validator(mode="after")
    def _consistent(self) -> _TextRequest:
        only(self.n, (1,), "n", "1: this server returns one choice per request")
        if self.stream_options is not None and not self.stream:
            raise Problem("invalid_request", "stream_options is only allowed with stream: true", param="stream_options")
        return self

    def sampling_overrides(self) -> dict[str, Any]:
        """The sampling values the caller gave, by SamplingParams' names."""
        names = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "presence_penalty", "frequency_penalty")
        values = {name: getattr(self, name) for name in (*names, "repetition_penalty", "seed")}
        values["stop"] = self.stop
        return values

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(ChatTools, _TextRequest):
    """POST /v1/chat/completions."""

    where: ClassVar[str] = "/v1/chat/completions"
    messages: list[ChatMessage] = Field(
        min_length=1, description="The conversation so far; must fit in the model's context with max_tokens."
    )
    max_completion_tokens: SamplingInt = sampling(
        "max_completion_tokens", alias_of="max_tokens", extra="Same as max_tokens."
    )
    logprobs: bool | None = Field(default=None, description="Only false: log probabilities are not available.")
    top_logprobs: int | None = Field(default=None, description="Only 0.")

    @model_validator(mode="after")
    def _chat(self) -> ChatCompletionRequest:
        only(self.logprobs, (False,), "logprobs", "false: log probabilities are not available")
        only(self.top_logprobs, (0,), "top_logprobs", "0 or null: log probabilities are not available")
        for index, message in enumerate(self.messages):
            message.check(f"messages[{index}]")
        if self.max_completion_tokens is not None:
            if self.max_tokens is not None and self.max_tokens != self.max_completion_tokens:
                raise Problem(
                    "invalid_request",
                    "max_tokens and max_completion_tokens disagree; send one",
                    param="max_completion_tokens",
                )
        return self

    def sampling_overrides(self) -> dict[str, Any]:
        values = super().sampling_overrides()
        if self.max_completion_tokens is not None:
            values["max_tokens"] = self.max_completion_tokens
        return values


def _one_prompt(value: Any) -> Any:
    if isinstance(value, list):
        if any(isinstance(p, int | list) for p in value):
            raise Problem("unsupported_parameter", "prompt: token arrays are not supported; send text", param="prompt")
        if len(value) != 1:
            raise Problem("unsupported_parameter", "prompt: send one prompt per request", param="prompt")
        return value[0]
    return value


class CompletionRequest(_TextRequest):
    """POST /v1/completions."""

    where: ClassVar[str] = "/v1/completions"
    prompt: Annotated[str, BeforeValidator(_one_prompt)] = Field(
        min_length=1,
        description="The text to continue (no chat template); must fit in the model's context with max_tokens. "
        "A list holding one string is accepted too.",
    )
    logprobs: int | None = Field(default=None, description="Only 0 or null.")
    echo: bool | None = Field(default=None, description="Only false: the prompt is not echoed.")
    best_of: int | None = Field(default=None, description="Only 1.")
    suffix: str | None = Field(default=None, description="Only empty: insertion is not supported.")

    @model_validator(mode="after")
    def _completion(self) -> CompletionRequest:
        only(self.logprobs, (0,), "logprobs", "0 or null: log probabilities are not available")
        only(self.echo, (False,), "echo", "false: the prompt is not echoed")
        only(self.best_of, (1,), "best_of", "1: one candidate is generated")
        only(self.suffix, ("",), "suffix", "empty: insertion is not supported")
        return self


def _texts(value: Any) -> Any:
    texts = [value] if isinstance(value, str) else value
    if isinstance(texts, list):
        for index, text in enumerate(texts):
            if isinstance(text, int | list):
                raise Problem(
                    "unsupported_parameter", "input: token arrays are not supported; send text", param="input"
                )
            if isinstance(text, str) and not text:
                raise Problem("invalid_parameter", f"input[{index}] must not be empty", param=f"input[{index}]")
    return texts


class EmbeddingRequest(_OpenAIBody):
    """POST /v1/embeddings."""

    where: ClassVar[str] = "/v1/embeddings"
    model: str = MODEL
    input: Annotated[list[str], BeforeValidator(_texts)] = Field(
        min_length=1,
        max_length=EMBEDDINGS_MAX_INPUTS,
        description=f"A text or a list of up to {EMBEDDINGS_MAX_INPUTS} texts; one vector per text, in order.",
    )
    encoding_format: Literal["float", "base64"] | None = Field(
        default=None, description="float (default) or base64: little-endian float32, what the openai SDK asks for."
    )
    dimensions: int | None = Field(
        default=None, ge=1, description="Only the model's own size: vectors cannot be shortened."
    )
    user: str | None = USER
    service_tier: str | None = SERVICE_TIER


class SpeechRequest(_OpenAIBody):
    """POST /v1/audio/speech."""

    where: ClassVar[str] = "/v1/audio/speech"
    model: str = MODEL
    input: str = Field(
        min_length=1,
        max_length=SPEECH_MAX_CHARACTERS,
        description=f"The text to speak, up to {SPEECH_MAX_CHARACTERS} characters.",
    )
    voice: str | None = Field(
        default=None,
        description="\"default\", the model's id, or one of OpenAI's voice names (" + ", ".join(OPENAI_VOICES) + "): "
        "each speaks with the model's one voice.",
    )
    speed: float | None = Field(
        default=None,
        ge=SPEECH_SPEED.low,
        le=SPEECH_SPEED.high,
        description=f"{SPEECH_SPEED.description} {SPEECH_SPEED.text().capitalize()}; default 1.",
        json_schema_extra={"x-range": "speed"},
    )
    response_format: str | None = Field(
        default=None,
        description=f"The audio format: {', '.join(FORMATS)} (each one this server's FFmpeg can encode; a 400 names "
        "those when one is missing); default wav.",
    )
    instructions: str | None = Field(default=None, description="Only empty: this voice takes no instructions.")
    stream_format: Literal["audio"] | None = Field(default=None, description="Only audio.")
    service_tier: str | None = SERVICE_TIER

    @field_validator("input")
    @classmethod
    def _spoken(cls, value: str) -> str:
        if not value.strip():
            raise Problem("invalid_parameter", "input must not be empty", param="input")
        return value

    @model_validator(mode="after")
    def _speech(self) -> SpeechRequest:
        if self.instructions:
            raise Problem("unsupported_parameter", "instructions are not supported by this voice", param="instructions")
        return self


class TranscriptionRequest(Body):
    """The text fields of POST /v1/audio/transcriptions and /v1/audio/translations (multipart/form-data)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    model: str = MODEL
    language: str | None = Field(
        default=None, description="ISO-639-1 code of the spoken language (e.g. en, de); left out: detected."
    )
    response_format: str | None = Field(
        default=None,
        description=f"One of {', '.join(STT_FORMATS)}; default json. text, srt and vtt return plain text.",
        json_schema_extra={"enum": list(STT_FORMATS)},
    )
    prompt: str | None = Field(default=None, description="Only empty: Whisper runs without prompt conditioning.")
    temperature: str | None = Field(
        default=None,
        description="Only empty: Whisper starts at 0 and raises it only for a segment that decodes poorly "
        "(faster-whisper's fallback).",
    )
    timestamp_granularities: str | None = Field(
        default=None, alias="timestamp_granularities[]", description="Only segment."
    )
    timestamp_granularities_plain: str | None = Field(
        default=None, alias="timestamp_granularities", description="Only segment."
    )
    stream: str | None = Field(default=None, description="Only false.")
    chunking_strategy: str | None = Field(default=None, description="Only empty.")
    include: str | None = Field(default=None, alias="include[]", description="Only empty.")
    service_tier: str | None = SERVICE_TIER

    @model_validator(mode="after")
    def _form(self) -> TranscriptionRequest:
        if (self.prompt or "").strip():
            raise Problem(
                "unsupported_parameter",
                "prompt is not supported: this server's Whisper runs without prompt conditioning",
                param="prompt",
            )
        if (self.temperature or "").strip():
            raise Problem(
                "unsupported_parameter",
                "temperature is not adjustable here: Whisper starts at 0 and raises it only for a segment that "
                "decodes poorly (faster-whisper's fallback)",
                param="temperature",
            )
        if self.format not in STT_FORMATS:
            raise Problem(
                "invalid_parameter",
                f"response_format must be one of {', '.join(STT_FORMATS)} (got {self.format!r})",
                param="response_format",
            )
        for key, value in (
            ("timestamp_granularities[]", self.timestamp_granularities),
            ("timestamp_granularities", self.timestamp_granularities_plain),
        ):
            if any(g.strip() not in ("", "segment") for g in (value or "").split(",")):
                raise Problem("unsupported_parameter", f"{key}: only 'segment' timestamps are available", param=key)
        if (self.stream or "false").strip().lower() not in ("false", "0", ""):
            raise Problem("unsupported_parameter", "stream is not supported for audio", param="stream")
        for key, value in (("chunking_strategy", self.chunking_strategy), ("include[]", self.include)):
            if (value or "").strip():
                raise Problem("unsupported_parameter", f"{key} is not supported", param=key)
        return self

    @property
    def format(self) -> str:
        return (self.response_format or "json").strip()

    @property
    def spoken_language(self) -> str | None:
        return (self.language or "").strip() or None


# --- responses -----------------------------------------------------------------------------------------------------


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Usage(Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Model(Response):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    name: str
    task: Literal["text-to-text", "text-completion", "embeddings", "speech-to-text", "text-to-speech"]
    capabilities: list[str]
    context_length: int | None = Field(
        description="Tokens this server serves (its KV cache), not what the model was trained for; null for audio."
    )


class ModelList(Response):
    object: Literal["list"] = "list"
    data: list[Model]


FinishReason = Literal["stop", "length", "tool_calls"]
ServedTier = Annotated[Literal["cpu", "gpu"], Field(description="Where the request ran.")]


class ToolCallFunction(Response):
    name: str
    arguments: str = Field(description="JSON text; incomplete when finish_reason is length.")


class ToolCallOut(Response):
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class AssistantMessage(Response):
    role: Literal["assistant"] = "assistant"
    content: str | None = Field(description="null when the reply is only tool calls.")
    refusal: None = None
    tool_calls: list[ToolCallOut] | None = Field(
        default=None, exclude_if=lambda calls: calls is None, description="Only when the model called tools."
    )


class ChatChoice(Response):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: FinishReason


class ChatCompletion(Response):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    service_tier: ServedTier
    system_fingerprint: str


class ChunkFunction(Response):
    name: str | None = Field(default=None, description="In a call's first delta.")
    arguments: str | None = Field(default=None, description="A piece of the arguments' JSON text.")


class ChunkToolCall(Response):
    index: int
    id: str | None = Field(default=None, description="In a call's first delta.")
    type: Literal["function"] | None = None
    function: ChunkFunction


class ChunkDelta(Response):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChatChunkChoice(Response):
    index: int = 0
    delta: ChunkDelta
    logprobs: None = None
    finish_reason: FinishReason | None


class ChatCompletionChunk(Response):
    """One server-sent event of a streamed chat completion (usage: only in the extra last chunk)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    service_tier: ServedTier
    system_fingerprint: str
    usage: Usage | None = Field(default=None, description="With stream_options.include_usage only.")


class CompletionChoice(Response):
    index: int = 0
    text: str
    logprobs: None = None
    finish_reason: FinishReason | None


class Completion(Response):
    """A completion, or one server-sent event of a streamed one (then finish_reason is null until the end)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    service_tier: ServedTier
    system_fingerprint: str


class Embedding(Response):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 little-endian float32.")


class EmbeddingUsage(Response):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(Response):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    service_tier: ServedTier


class AudioUsage(Response):
    type: Literal["duration"] = "duration"
    seconds: float


class Transcription(Response):
    text: str
    usage: AudioUsage


class TranscriptionSegment(Response):
    id: int
    start: float
    end: float
    text: str


class TranscriptionVerbose(Response):
    task: Literal["transcribe", "translate"]
    language: str = Field(description="The ISO code the model detected or was given.")
    duration: float
    text: str
    segments: list[TranscriptionSegment]
    usage: AudioUsage


REQUESTS: tuple[type[BaseModel], ...] = (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    SpeechRequest,
    TranscriptionRequest,
)
RESPONSES: tuple[type[BaseModel], ...] = (
    ModelList,
    ChatCompletion,
    ChatCompletionChunk,
    Completion,
    EmbeddingList,
    Transcription,
    TranscriptionVerbose,
)
