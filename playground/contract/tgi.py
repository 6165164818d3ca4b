"""Hugging Face Text Generation Inference's dialect (/generate, /generate_stream, /info, POST /) as typed models.

TGI's parameters take SamplingParams' ranges from RANGES (``max_new_tokens`` is ``max_tokens``); the parameters
TGI clients send on every request that this server cannot honour (best_of, watermark, ...) pass at their neutral
values only. Like TGI, generated_text keeps the stop sequence it ended on.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from inference.types import MAX_STOP_SEQUENCES
from playground.contract.errors import Problem
from playground.contract.fields import Body, SamplingInt, only, sampling, stop_sequences

VERSION = "0.1.0"
# TGI samples only when a sampling parameter is given (or do_sample is true); otherwise it decodes greedily.
SAMPLING_TRIGGERS = ("temperature", "top_p", "top_k")


def _tgi_stop(value: Any) -> Any:
    return stop_sequences(value, param="parameters.stop")


class Grammar(BaseModel):
    """TGI's grammar parameter."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["json", "regex"]
    value: Any = Field(description="A JSON Schema (an object, or its JSON text) for json; a pattern for regex.")


class GenerateParameters(Body):
    """TGI's ``parameters`` object."""

    max_new_tokens: SamplingInt = sampling("max_new_tokens", alias_of="max_tokens", extra="TGI's name for max_tokens.")
    temperature: float | None = sampling("temperature")
    top_p: float | None = sampling("top_p")
    top_k: SamplingInt = sampling("top_k")
    repetition_penalty: float | None = sampling("repetition_penalty")
    frequency_penalty: float | None = sampling("frequency_penalty")
    seed: SamplingInt = sampling("seed", extra="Reported back in details.seed when sampling.")
    stop: Annotated[Any, BeforeValidator(_tgi_stop)] = Field(
        default=None,
        description=f"Up to {MAX_STOP_SEQUENCES} sequences; generation stops after one (it stays in the text).",
        json_schema_extra={
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "maxItems": MAX_STOP_SEQUENCES,
        },
    )
    do_sample: bool | None = Field(
        default=None,
        description="false: greedy whatever else is set. Left out: sample only when temperature, top_p or top_k is "
        "given (TGI's rule), so a bare request is greedy.",
    )
    details: bool | None = Field(default=None, description="true: details also lists the generated tokens.")
    # Sent by TGI clients on every request; accepted at their neutral values only.
    best_of: int | None = Field(default=None, description="Only 1.")
    decoder_input_details: bool | None = Field(default=None, description="Only false.")
    return_full_text: bool | None = Field(default=None, description="Only false.")
    truncate: int | None = Field(default=None, description="Only null.")
    typical_p: float | None = Field(default=None, description="Only 1.")
    watermark: bool | None = Field(default=None, description="Only false.")
    top_n_tokens: int | None = Field(default=None, description="Only 0.")
    grammar: Grammar | None = Field(
        default=None,
        description='{"type": "json", "value": <JSON Schema>} or {"type": "regex", "value": "<pattern>"}: the '
        "reply must match it (enforced with a grammar while decoding).",
    )
    adapter_id: str | None = Field(default=None, description="Only null.")

    @model_validator(mode="after")
    def _neutral(self) -> GenerateParameters:
        for name, allowed, why in (
            ("best_of", (1,), "1"),
            ("decoder_input_details", (False,), "false"),
            ("return_full_text", (False,), "false"),
            ("typical_p", (1.0,), "1"),
            ("watermark", (False,), "false"),
            ("top_n_tokens", (0,), "0"),
        ):
            only(getattr(self, name), allowed, f"parameters.{name}", f"{why}: not supported by this server")
        for name in ("truncate", "adapter_id"):
            if getattr(self, name) is not None:
                raise Problem(
                    "unsupported_parameter",
                    f"parameters.{name} must be null: not supported by this server",
                    param=f"parameters.{name}",
                )
        return self

    def sampling_overrides(self) -> dict[str, Any]:
        """SamplingParams' values; do_sample false (or no sampling parameter at all) means greedy."""
        given = self.model_fields_set
        do_sample = self.do_sample
        if do_sample is None:
            do_sample = any(name in given and getattr(self, name) is not None for name in SAMPLING_TRIGGERS)
        values: dict[str, Any] = {
            "max_tokens": self.max_new_tokens,
            "temperature": self.temperature if do_sample else 0.0,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty,
            "frequency_penalty": self.frequency_penalty,
            "seed": self.seed,
            "stop": self.stop,
        }
        return values


class GenerateRequest(Body):
    """The body of POST /generate, /generate_stream and POST / (TGI's compatibility route)."""

    inputs: str = Field(description="The prompt. A chat model gets it as one user message through its template.")
    parameters: GenerateParameters | None = Field(
        default=None, description="The sampling parameters (below); left out: greedy with the model's defaults."
    )
    stream: bool | None = Field(
        default=None, description="On POST / (and /generate): true answers as /generate_stream does."
    )

    @field_validator("inputs")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise Problem("invalid_parameter", "inputs must not be empty", param="inputs")
        return value

    @property
    def params(self) -> GenerateParameters:
        return self.parameters or GenerateParameters()


# --- responses -----------------------------------------------------------------------------------------------------

FinishReason = Literal["length", "eos_token", "stop_sequence"]


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Token(Response):
    id: int = Field(description="The piece's position in the reply (the engine yields text, not vocabulary ids).")
    text: str
    logprob: float | None = Field(default=None, description="Always null: the engine reports no logprobs.")
    special: bool = Field(description="true only for the empty end-of-sequence piece.")


class Details(Response):
    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None = Field(description="The seed used when sampling; null for greedy decoding.")
    prefill: list[Token] | None = Field(default=None, description="Empty; with details: true only.")
    tokens: list[Token] | None = Field(default=None, description="With details: true only.")


class GenerateResponse(Response):
    generated_text: str
    details: Details


class StreamDetails(Response):
    finish_reason: FinishReason
    generated_tokens: int
    seed: int | None
    input_length: int = Field(description="Prompt tokens.")


class StreamResponse(Response):
    """One server-sent event of /generate_stream; the last has generated_text and details."""

    token: Token
    generated_text: str | None
    details: StreamDetails | None


class StreamError(Response):
    """The event that ends a stream that failed after it started (TGI's shape)."""

    error: str
    error_type: str


class Info(Response):
    model_id: str
    model_sha: str | None
    model_dtype: str | None
    model_device_type: str
    model_pipeline_tag: str
    quantization: str | None
    task: str
    chat_template: bool
    state: str
    max_concurrent_requests: int
    max_queue: int
    max_best_of: int
    max_stop_sequences: int
    max_input_tokens: int
    max_input_length: int = Field(description="TGI's older name for max_input_tokens.")
    max_total_tokens: int
    max_batch_size: int
    max_client_batch_size: int
    waiting_served_ratio: float | None
    max_batch_total_tokens: int
    max_waiting_tokens: int | None
    validation_workers: int | None
    router: str
    version: str
    sha: str | None
    docker_label: str | None


REQUESTS: tuple[type[BaseModel], ...] = (GenerateRequest,)
RESPONSES: tuple[type[BaseModel], ...] = (GenerateResponse, StreamResponse, StreamError, Info)
