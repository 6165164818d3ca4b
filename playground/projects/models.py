from __future__ import annotations

from django.conf import settings
from django.db import models


class Project(models.Model):
    """Where tokens, usage, datasets, jobs and conversations live. Every user has one personal project (personal_of);
    more are created and shared with members."""

    name = models.CharField(max_length=100)
    personal_of = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="personal_project"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"  # manages members, tokens and endpoints
        MEMBER = "member"  # uses the project

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user__username"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


def personal_project_id(user_id: int) -> int:
    """The id of the user's personal project, made if missing (for the models' save() of rows that name none)."""
    from playground.projects.services import project_personal

    project = Project.objects.filter(personal_of_id=user_id).values_list("pk", flat=True).first()
    if project is not None:
        return project
    from django.contrib.auth import get_user_model

    return project_personal(user=get_user_model().objects.get(pk=user_id)).pk
