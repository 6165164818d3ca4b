"""Creating projects and managing their members."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from playground.contract.errors import Problem
from playground.projects.models import Membership, Project
from playground.projects.selectors import owner_get

PERSONAL_NAME = "Personal"


@transaction.atomic
def project_personal(*, user: AbstractBaseUser) -> Project:
    """The user's personal project (created on first need: new users get it at sign-up, existing ones by the data
    migration)."""
    project = Project.objects.filter(personal_of=user).first()
    if project is None:
        project = Project.objects.create(name=PERSONAL_NAME, personal_of=user)
        Membership.objects.create(project=project, user=user, role=Membership.Role.OWNER)
    return project


@transaction.atomic
def project_create(*, user: AbstractBaseUser, name: str) -> Project:
    """A shared project; its creator is its first owner."""
    project = Project.objects.create(name=" ".join(name.split()) or "Project")
    Membership.objects.create(project=project, user=user, role=Membership.Role.OWNER)
    return project


def _owner_check(*, user: AbstractBaseUser, project_id: int) -> Project:
    return owner_get(user=user, project_id=project_id).project  # a non-member: 404; a member: 403


def member_add(*, user: AbstractBaseUser, project_id: int, username: str, role: str) -> Membership:
    """Add (or change the role of) a member by username; only an owner may. A personal project has no other
    members."""
    project = _owner_check(user=user, project_id=project_id)
    if project.personal_of_id is not None:
        raise Problem("invalid_parameter", "A personal project has no other members: create a project to share.")
    if role not in Membership.Role.values:
        raise Problem(
            "invalid_parameter", f"The role must be one of {', '.join(Membership.Role.values)}.", param="role"
        )
    member = get_user_model().objects.filter(username=username.strip(), is_active=True).first()
    if member is None:
        raise Problem("invalid_parameter", f"There is no user named “{username.strip()}”.", param="username")
    membership, _ = Membership.objects.update_or_create(project=project, user=member, defaults={"role": role})
    return membership


@transaction.atomic
def member_remove(*, user: AbstractBaseUser, project_id: int, member_id: int) -> None:
    """Remove a member; only an owner may, and the last owner stays."""
    project = _owner_check(user=user, project_id=project_id)
    membership = Membership.objects.select_for_update().filter(project=project, user_id=member_id).first()
    if membership is None:
        return
    owners = Membership.objects.filter(project=project, role=Membership.Role.OWNER)
    if membership.is_owner and owners.count() <= 1:
        raise Problem("invalid_parameter", "A project keeps at least one owner.")
    membership.delete()
