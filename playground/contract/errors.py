"""The one error vocabulary: every refusal any surface makes has a code from CODES, a message and maybe a param.

HTTP routes answer ``{"error": {"message", "type", "code", "param"?}}`` with the code's status; the sockets send
``{"type": "error", "code", "param", "message"}``. The same bad value gets the same code, param and message on
every route and socket (a dialect that nests a field names it by its path there, e.g. TGI's
``parameters.temperature``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inference.types import EngineError, InvalidRequestError

RETRY_AFTER_SECONDS = 2  # what a 429 (model queue full) suggests


@dataclass(frozen=True)
class Code:
    code: str
    status: int
    type: str
    when: str


# In the order a request meets them.
CODES: dict[str, Code] = {
    c.code: c
    for c in (
        Code(
            "banned",
            403,
            "permission_error",
            "The client address is banned after too many failed authentications; Retry-After gives the seconds left.",
        ),
        Code(
            "invalid_api_key",
            401,
            "authentication_error",
            "No Authorization: Bearer header, or the token is unknown, revoked or expired.",
        ),
        Code(
            "method_not_allowed",
            405,
            "invalid_request_error",
            "Wrong HTTP method; the Allow header names the right one.",
        ),
        Code(
            "request_too_large",
            413,
            "invalid_request_error",
            "The body is larger than the route allows: PLAYGROUND_MAX_JSON_BYTES for JSON, PLAYGROUND_MAX_BODY_BYTES "
            "for audio; refused from Content-Length before it is read.",
        ),
        Code("audio_too_large", 413, "invalid_request_error", "The audio is larger than the limit for it."),
        Code("invalid_json", 400, "invalid_request_error", "The body is not a JSON object."),
        Code("invalid_content_type", 400, "invalid_request_error", "Audio must come as multipart/form-data."),
        Code("unknown_parameter", 400, "invalid_request_error", "A field this endpoint does not have; param names it."),
        Code(
            "unsupported_parameter",
            400,
            "invalid_request_error",
            "A field of the dialect this server cannot honour, sent with a value other than its neutral one.",
        ),
        Code("missing_required_parameter", 400, "invalid_request_error", "A required field is missing."),
        Code("invalid_type", 400, "invalid_request_error", "A field has the wrong JSON type."),
        Code(
            "invalid_parameter",
            400,
            "invalid_request_error",
            "A field's value is outside what it accepts (a range, a list of choices, a length).",
        ),
        Code(
            "invalid_request", 400, "invalid_request_error", "The request is wrong in some other way the message names."
        ),
        Code(
            "image_input_not_supported", 400, "invalid_request_error", "Images sent to a model that cannot read them."
        ),
        Code(
            "context_length_exceeded",
            400,
            "invalid_request_error",
            "The prompt plus max_tokens does not fit the model's context.",
        ),
        Code("invalid_audio", 400, "invalid_request_error", "The audio could not be decoded."),
        Code(
            "audio_too_long",
            400,
            "invalid_request_error",
            "The audio lasts longer than this server accepts (PLAYGROUND_MAX_AUDIO_SECONDS), read from its "
            "container before decoding.",
        ),
        Code(
            "tier_unavailable",
            400,
            "invalid_request_error",
            "service_tier asks for the GPU where the model does not run on one.",
        ),
        Code(
            "model_not_found",
            404,
            "invalid_request_error",
            "The model does not exist, or it serves another task than the endpoint (e.g. an embeddings model on "
            "/v1/chat/completions or /generate).",
        ),
        Code("unknown_url", 404, "invalid_request_error", "No endpoint at this path."),
        Code("not_found", 404, "invalid_request_error", "No such object of yours (e.g. a conversation id)."),
        Code(
            "endpoint_paused",
            503,
            "service_unavailable_error",
            "The deployed endpoint is paused by an owner of its project; it answers again once resumed.",
        ),
        Code(
            "queue_full",
            429,
            "rate_limit_error",
            "The model's waiting line is full (PLAYGROUND_MAX_QUEUE); retry after Retry-After seconds "
            "(also retry_after in the error object).",
        ),
        Code(
            "rate_limit_exceeded",
            429,
            "rate_limit_error",
            "A limit of yours is reached: requests or tokens per minute, a spending cap, or your share of a "
            "model's queue; Retry-After (and retry_after) say when to try again.",
        ),
        Code("model_load_failed", 503, "server_error", "The model's weights could not be loaded."),
        Code(
            "upstream_unavailable",
            503,
            "service_unavailable_error",
            "A remote model's servers could not take the request: every upstream is down, busy or refusing it "
            "(nothing was generated; retry later).",
        ),
        Code(
            "upstream_error",
            502,
            "server_error",
            "A remote model's server broke off its reply after it had begun; a stream ends with an error event.",
        ),
        Code(
            "timeout",
            504,
            "timeout_error",
            "The request ran longer than PLAYGROUND_REQUEST_TIMEOUT seconds (queue wait included); the engine was "
            "stopped. A stream that has already started ends with an error event instead.",
        ),
        Code("engine_error", 500, "server_error", "The engine failed; the server log has the details."),
    )
}


class Problem(InvalidRequestError):
    """A refusal with its code from CODES. Raised by the contract's validators and the services alike."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"undocumented error code {code!r}: add it to CODES")
        super().__init__(message, param=param)
        self.code = code  # type: ignore[misc]  # per instance, not the class default
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def status(self) -> int:
        return CODES[self.code].status

    @property
    def type(self) -> str:
        return CODES[self.code].type

    @property
    def message(self) -> str:
        return str(self)

    def body(self) -> dict[str, Any]:
        """The HTTP error body."""
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}

    def frame(self) -> dict[str, Any]:
        """The WebSocket error frame (with retry_after when there is one)."""
        return {"type": "error", "code": self.code, "param": self.param, "message": self.message, **self.extra}


def problem(exc: EngineError, *, param: str | None = None) -> Problem:
    """Any engine or contract refusal as a Problem; `param` is used when the refusal names none."""
    if isinstance(exc, Problem):
        return exc
    code = exc.code if exc.code in CODES else "engine_error"
    named = getattr(exc, "param", None) or param
    if code == "model_not_found":
        named = "model"
    if code in ("queue_full", "rate_limit_exceeded"):
        seconds = int(getattr(exc, "retry_after", None) or RETRY_AFTER_SECONDS)
        return Problem(code, str(exc), headers={"Retry-After": str(seconds)}, extra={"retry_after": seconds})
    if code == "upstream_unavailable":
        return Problem(code, str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return Problem(code, str(exc), param=named)
