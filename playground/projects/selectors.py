"""Reading projects: a user only ever sees the projects they are a member of; any other is a 404."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from playground.projects.models import Membership, Project


def project_list(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """The user's projects, the personal one first."""
    return Project.objects.filter(memberships__user=user).order_by("personal_of", "name", "pk")


def membership_get(*, user: AbstractBaseUser, project_id: int | None) -> Membership:
    """The user's membership of this project; a non-member (or no such project): 404."""
    membership = Membership.objects.select_related("project").filter(project_id=project_id, user=user).first()
    if membership is None or not user.is_authenticated:
        raise Http404("no such project")
    return membership


def project_get(*, user: AbstractBaseUser, project_id: int | None) -> Project:
    return membership_get(user=user, project_id=project_id).project


def project_ids(*, user: AbstractBaseUser) -> QuerySet[Membership, int]:
    """The ids of the user's projects, for filtering objects by membership."""
    return Membership.objects.filter(user=user).values_list("project_id", flat=True)


def owner_get(*, user: AbstractBaseUser, project_id: int | None) -> Membership:
    """The user's membership of this project, for what only an owner does: a non-member gets 404, a member 403."""
    membership = membership_get(user=user, project_id=project_id)
    if not membership.is_owner:
        raise PermissionDenied("only the project's owners can do this")
    return membership


def members_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username")
