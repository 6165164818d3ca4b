"""Reading tokens: a user sees the tokens of the projects they are a member of; any other is a 404."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from playground.projects.models import Project
from playground.projects.selectors import project_ids
from playground.tokens.limits import LimitStatus, limits_status
from playground.tokens.models import ApiToken


def token_list(*, project: Project) -> QuerySet[ApiToken]:
    """The project's tokens, newest first (revoked and expired ones too, so the list explains a refusal)."""
    return ApiToken.objects.filter(project=project).select_related("user").order_by("-created_at", "-pk")


def token_get(*, user: AbstractBaseUser, token_id: int) -> ApiToken:
    """A token of one of the user's projects; a non-member (or no such token): 404."""
    token = ApiToken.objects.filter(pk=token_id, project__in=project_ids(user=user)).first()
    if token is None:
        raise Http404("no such token")
    return token


@dataclass(frozen=True)
class TokenLimits:
    token: ApiToken
    limits: list[LimitStatus]  # empty for a revoked token: it makes no more requests

    @property
    def any_set(self) -> bool:
        return any(not status.unlimited for status in self.limits)


def token_limits_list(*, project: Project, now: datetime | None = None, active_only: bool = False) -> list[TokenLimits]:
    """The project's tokens, newest first, each with its limits, use and what is left (active_only: only the tokens
    that can still make requests)."""
    now = now or timezone.now()
    rows = []
    for token in token_list(project=project):
        state = token.state
        if active_only and state != "active":
            continue
        rows.append(TokenLimits(token=token, limits=[] if state == "revoked" else limits_status(token=token, now=now)))
    return rows
