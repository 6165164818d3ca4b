"""Reading tokens: a user only ever sees their own."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from playground.tokens.models import ApiToken


def token_list(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The user's tokens, newest first (revoked and expired ones too, so the list explains a refusal)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-pk")
