"""The current project of a browser session: the one the pages show and create in (the personal one by default)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from playground.projects.models import Membership, Project
from playground.projects.services import project_personal

SESSION_KEY = "project_id"


def session_membership(*, user: AbstractBaseUser, session: Mapping[str, Any]) -> Membership:
    """The user's membership of the session's project; a project they have left (or none chosen) falls back to the
    personal one. Sockets call this with their scope's session, pages through current_membership."""
    project_id = session.get(SESSION_KEY)
    membership = None
    if project_id is not None:
        membership = Membership.objects.select_related("project").filter(project_id=project_id, user=user).first()
    if membership is None:
        personal = project_personal(user=user)
        membership = Membership.objects.select_related("project").get(project=personal, user=user)
    return membership


def current_membership(request: HttpRequest) -> Membership:
    cached = getattr(request, "_project_membership", None)
    if cached is None:
        cached = session_membership(user=request.user, session=request.session)
        request._project_membership = cached  # type: ignore[attr-defined]  # one look-up per request
    return cached


def current_project(request: HttpRequest) -> Project:
    return current_membership(request).project


def current_set(request: HttpRequest, project: Project) -> None:
    request.session[SESSION_KEY] = project.pk
    request._project_membership = None  # type: ignore[attr-defined]
