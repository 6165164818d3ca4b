from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def signup(request: HttpRequest) -> dict[str, bool]:
    """Whether pages offer "Sign up" (PLAYGROUND_SIGNUP)."""
    return {"signup_open": settings.PLAYGROUND_SIGNUP == "open"}
