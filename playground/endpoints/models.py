from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class Endpoint(models.Model):
    """A deployed model: a catalog model at a project-scoped URL, with its own defaults, an optional fixed system
    prompt and its own rate limit."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="endpoints")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    model_id = models.CharField(max_length=100)
    # Default sampling values in the request body's names (temperature, top_p, max_tokens, ...): a request's own
    # values win.
    params = models.JSONField(default=dict, blank=True)
    system_prompt = models.TextField(blank=True, help_text="Replaces any system message a chat request sends.")
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty: no limit of its own."
    )
    paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def path(self) -> str:
        """The endpoint's base path; its routes follow (v1/chat/completions, ...)."""
        return f"/project/p-{self.project_id}/endpoint/is-{self.pk}/v1/"

    @property
    def state(self) -> str:
        return "paused" if self.paused else "running"
