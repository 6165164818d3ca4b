"""The unified-inference dialect (/ai/): every request and response body as a typed model.

A small API of its own that hosted "unified inference" platforms speak: ``POST /ai/chat``, ``POST /ai/generate``,
``POST /ai/embeddings``, ``GET /ai/models``. What is shared with /v1 is shared, not described twice: the chat
messages (``ChatMessage``), the tools and reply format (``ChatTools``: tools, tool_choice, parallel_tool_calls,
response_format), the tool calls in an answer (``ToolCallOut``) and the usage (``Usage``); sampling fields read
their ranges from RANGES. Choices where the dialect is silent (the field descriptions say them too):

- Unknown fields are refused (``unknown_parameter``), as on every route.
- ``/ai/generate`` takes a completion model, or a chat model that gets the prompt as one user message (as TGI's
  routes do here). Its answer also says ``model`` and ``finish_reason``.
- A streamed chat sends ``{"delta": {"content": ...}}`` per piece, each tool call once it is complete as
  ``{"delta": {"tool_calls": [{"index", "id", "type", "function": {"name", "arguments"}}]}}``, then
  ``{"delta": {}, "finish_reason": ..., "usage": {...}}`` and ``[DONE]``.
- Errors: ``{"error": {"code", "message", "param"?, "retry_after"?, "status"}}``: the same code, message and param
  as every other route (playground/contract/errors.py), in this dialect's shape.

Class names start with ``Ai`` because the OpenAPI document holds every dialect's schemas side by side.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from playground.contract.errors import CODES, Problem
from playground.contract.fields import Body, SamplingInt, sampling
from playground.contract.openai import EMBEDDINGS_MAX_INPUTS, ChatMessage, ChatTools, ToolCallOut, Usage

MODEL = Field(description="The model id (GET /ai/models lists them).")
FinishReason = Literal["stop", "length", "tool_calls"]
FINISH = Field(description="stop: the model ended its reply; length: max_tokens cut it; tool_calls: it called tools.")


# --- requests ------------------------------------------------------------------------------------------------------


class _ChatFields(Body):
    model: str = MODEL
    messages: list[ChatMessage] = Field(
        min_length=1,
        description="The conversation so far, {role, content} each (system, user, assistant, tool); an assistant "
        "turn may carry the tool_calls an answer gave, a tool turn answers one by tool_call_id. Must fit in the "
        "model's context with max_tokens.",
    )
    temperature: float | None = sampling("temperature", extra="Left out: the model's catalog default.")
    max_tokens: SamplingInt = sampling("max_tokens")
    top_p: float | None = sampling("top_p")
    stream: bool | None = Field(
        default=None,
        description='true: server-sent events, data: {"delta": {"content": "..."}} per piece, a last '
        'data: {"delta": {}, "finish_reason": "stop", "usage": {...}}, then data: [DONE].',
    )


class AiChatRequest(ChatTools, _ChatFields):
    """POST /ai/chat. The tool fields are /v1's (ChatTools), checked and used the same way."""

    where: ClassVar[str] = "/ai/chat"

    @model_validator(mode="after")
    def _turns(self) -> AiChatRequest:
        for index, message in enumerate(self.messages):
            message.check(f"messages[{index}]")
        return self

    def sampling_overrides(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "top_p": self.top_p}


class AiGenerateRequest(Body):
    """POST /ai/generate."""

    where: ClassVar[str] = "/ai/generate"
    model: str = MODEL
    prompt: str = Field(
        min_length=1,
        description="The text to continue (a completion model), or one user message (a chat model, through its "
        "template). Must fit in the model's context with max_tokens.",
    )
    max_tokens: SamplingInt = sampling("max_tokens")
    temperature: float | None = sampling("temperature", extra="Left out: the model's catalog default.")

    def sampling_overrides(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}


class AiEmbeddingsRequest(Body):
    """POST /ai/embeddings."""

    where: ClassVar[str] = "/ai/embeddings"
    model: str = MODEL
    input: str | list[str] = Field(
        description=f"A text (the answer has embedding) or a list of up to {EMBEDDINGS_MAX_INPUTS} texts (the "
        "answer has embeddings, in order).",
        json_schema_extra={
            "anyOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "minItems": 1,
                    "maxItems": EMBEDDINGS_MAX_INPUTS,
                },
            ]
        },
    )

    @field_validator("input")
    @classmethod
    def _texts(cls, value: str | list[str]) -> str | list[str]:
        # Checked here rather than with constraints in the union, so that each refusal names input or input[i].
        if isinstance(value, list) and len(value) > EMBEDDINGS_MAX_INPUTS:
            raise Problem(
                "invalid_parameter",
                f"input has {len(value)} items; the limit is {EMBEDDINGS_MAX_INPUTS}",
                param="input",
            )
        for index, text in enumerate([value] if isinstance(value, str) else value or [""]):
            if not text:
                param = "input" if isinstance(value, str) or not value else f"input[{index}]"
                raise Problem("invalid_parameter", f"{param} must not be empty", param=param)
        return value

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


# --- responses -----------------------------------------------------------------------------------------------------


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _absent_if_none(value: object) -> bool:
    return value is None


class AiMessage(Response):
    role: Literal["assistant"] = "assistant"
    content: str | None = Field(description="The reply's text; null when the reply is only tool calls.")
    tool_calls: list[ToolCallOut] | None = Field(
        default=None,
        exclude_if=_absent_if_none,
        description="Only when the model called tools; send the message back in messages, then a tool message "
        "per call ({role: tool, tool_call_id, content}).",
    )


class AiChatResponse(Response):
    id: str
    model: str
    message: AiMessage
    usage: Usage
    finish_reason: FinishReason = FINISH


class AiStreamToolCall(ToolCallOut):
    """A complete tool call in a stream: sent once, whole (its arguments are never split)."""

    index: int = Field(description="The call's place in the reply, from 0.")


class AiDelta(Response):
    content: str | None = Field(default=None, exclude_if=_absent_if_none, description="The next piece of text.")
    tool_calls: list[AiStreamToolCall] | None = Field(
        default=None, exclude_if=_absent_if_none, description="A tool call, once it is complete."
    )


class AiChatChunk(Response):
    """One server-sent event of a streamed chat: a delta, or the last (empty delta, finish_reason and usage)."""

    delta: AiDelta
    finish_reason: FinishReason | None = Field(default=None, exclude_if=_absent_if_none, description="Last only.")
    usage: Usage | None = Field(default=None, exclude_if=_absent_if_none, description="Last only.")


class AiGenerateResponse(Response):
    id: str
    model: str
    text: str
    finish_reason: FinishReason = FINISH
    usage: Usage


class AiEmbeddingUsage(Response):
    total_tokens: int


class AiEmbedding(Response):
    """The answer to a single text."""

    model: str
    embedding: list[float] = Field(description="L2-normalised.")
    dimensions: int
    usage: AiEmbeddingUsage


class AiEmbeddings(Response):
    """The answer to a list of texts: one vector per text, in order."""

    model: str
    embeddings: list[list[float]] = Field(description="L2-normalised, one per input, in order.")
    dimensions: int
    usage: AiEmbeddingUsage


class AiModel(Response):
    id: str
    provider: str = Field(description="Who serves it: this server.")
    capabilities: list[str] = Field(
        description="The /ai/ routes it answers (chat, generate, embeddings), then the catalog's capabilities in "
        "this dialect's words (tools: function_calling; json-mode: json_mode; ...)."
    )
    context_length: int | None = Field(description="Tokens this server serves (its KV cache); null if not text.")


class AiModelList(Response):
    models: list[AiModel]


class AiErrorDetail(Response):
    code: str = Field(description="Machine-readable reason.", json_schema_extra={"enum": list(CODES)})
    message: str = Field(description="What went wrong, for a person.")
    param: str | None = Field(
        default=None, exclude_if=_absent_if_none, description="The request field at fault, when there is one."
    )
    retry_after: int | None = Field(
        default=None,
        exclude_if=_absent_if_none,
        description="Seconds to wait (rate limits, a full queue), as the Retry-After header says.",
    )
    status: int = Field(description="The HTTP status.")


class AiError(Response):
    """Every error of the /ai/ routes (inside a started stream: one event, then [DONE])."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "rate_limit_exceeded",
                        "message": "rate limit reached: this token allows 60 requests per minute; try again in 12 s "
                        "(2025-01-01 12:00:00 UTC)",
                        "retry_after": 12,
                        "status": 429,
                    }
                }
            ]
        },
    )
    error: AiErrorDetail


def error_body(problem: Problem) -> dict[str, Any]:
    """A Problem (any refusal: its code, message, param and retry_after) in this dialect's error shape."""
    retry_after = problem.extra.get("retry_after")
    detail = AiErrorDetail(
        code=problem.code,
        message=problem.message,
        param=problem.param,
        retry_after=int(retry_after) if retry_after is not None else None,
        status=problem.status,
    )
    return AiError(error=detail).model_dump(mode="json")


REQUESTS: tuple[type[BaseModel], ...] = (AiChatRequest, AiGenerateRequest, AiEmbeddingsRequest)
RESPONSES: tuple[type[BaseModel], ...] = (
    AiModelList,
    AiChatResponse,
    AiChatChunk,
    AiGenerateResponse,
    AiEmbedding,
    AiEmbeddings,
    AiError,
)
