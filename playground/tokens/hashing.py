"""Token values: a recognisable prefix plus 32 random bytes; stored as a SHA-256 hex digest."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "gp_"
RAW_LENGTH = len(PREFIX) + 43  # token_urlsafe(32) gives 43 characters
DISPLAY_LENGTH = 10  # "gp_" + 7 characters shown in lists


def token_generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def looks_like_token(raw: str) -> bool:
    """Cheap shape check before hashing (and before touching the database)."""
    return raw.startswith(PREFIX) and len(raw) == RAW_LENGTH
