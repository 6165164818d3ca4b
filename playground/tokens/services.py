"""Creating, checking and revoking API tokens."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from playground.projects.models import Project
from playground.projects.selectors import owner_get
from playground.tokens.hashing import DISPLAY_LENGTH, looks_like_token, token_digest, token_generate
from playground.tokens.models import ApiToken
from playground.tokens.selectors import token_get

LAST_USED_RESOLUTION_SECONDS = 60  # write last_used_at at most once a minute per token


def token_create(
    *, user: AbstractBaseUser, label: str, expires_at: datetime | None = None, project: Project | None = None
) -> tuple[ApiToken, str]:
    """Create a token in a project (default: the user's personal one); its requests are billed to that project.
    Only the project's owners may. The raw value is returned exactly once and never stored."""
    if project is not None:
        owner_get(user=user, project_id=project.pk)  # a non-member: 404; a member: 403
    raw = token_generate()
    token = ApiToken.objects.create(
        user=user,
        project=project,
        label=label.strip() or "token",
        digest=token_digest(raw),
        prefix=raw[:DISPLAY_LENGTH],
        expires_at=expires_at,
    )
    return token, raw


def token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token with this raw value, or None (unknown, revoked or expired). Records last use."""
    if not looks_like_token(raw):
        return None
    token = ApiToken.objects.select_related("user", "project").filter(digest=token_digest(raw)).first()
    if token is None or token.state != "active" or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_revoke(*, user: AbstractBaseUser, token_id: int) -> ApiToken:
    """Revoke a token of a project the user owns (effective on the very next request). A non-member: 404; a member:
    403."""
    token = token_get(user=user, token_id=token_id)
    owner_get(user=user, project_id=token.project_id)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_limits_set(
    *,
    user: AbstractBaseUser,
    token_id: int,
    requests_per_minute: int | None,
    tokens_per_minute: int | None,
    spend_per_day: Decimal | None,
    spend_per_month: Decimal | None,
) -> ApiToken:
    """Set the limits of a token of a project the user owns (None: no limit); effective on its next request. A
    non-member: 404; a member: 403."""
    token = token_get(user=user, token_id=token_id)
    owner_get(user=user, project_id=token.project_id)
    token.requests_per_minute = requests_per_minute
    token.tokens_per_minute = tokens_per_minute
    token.spend_per_day = spend_per_day
    token.spend_per_month = spend_per_month
    token.save(update_fields=["requests_per_minute", "tokens_per_minute", "spend_per_day", "spend_per_month"])
    return token
