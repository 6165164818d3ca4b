"""The API's one error shape: {"error": {"message", "type", "code", "param"?}} with the right HTTP status."""

from __future__ import annotations

from django.http import JsonResponse

from inference import EngineError

RETRY_AFTER_SECONDS = 2  # what a 429 (model queue full) suggests


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"message": self.message, "type": self.type, "code": self.code}
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def error_response(error: ApiError) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def from_engine_error(exc: EngineError) -> ApiError:
    """Map an engine's refusal to its documented HTTP status."""
    code = exc.code
    if code == "model_not_found":
        return ApiError(404, str(exc), code=code, param="model")
    if code == "queue_full":
        return ApiError(
            429,
            str(exc),
            type="rate_limit_error",
            code=code,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            extra={"retry_after": RETRY_AFTER_SECONDS},
        )
    if code == "model_load_failed":
        return ApiError(503, str(exc), type="server_error", code=code)
    if code == "context_length_exceeded":
        return ApiError(400, str(exc), code=code, param="messages")
    return ApiError(400, str(exc), code=code)
