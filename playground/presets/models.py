"""What a user keeps of the Playground's settings: named presets, and per model the settings last used."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models


class Preset(models.Model):
    """A named system prompt and Advanced Parameters, saved by a user to reuse with any text model."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presets")
    name = models.CharField(max_length=80)
    system_prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="The panel's values; stop is a list of strings.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="preset_name_unique_per_user")]

    def __str__(self) -> str:
        return self.name

    def params_json(self) -> str:
        """The parameters as JSON text, for the Playground's picker."""
        return json.dumps(self.params)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.pk, "name": self.name, "system_prompt": self.system_prompt, "params": self.params}


class LastSettings(models.Model):
    """Per user and model: the parameters and system prompt of the latest reply. A new chat starts from them."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="last_settings")
    model_id = models.CharField(max_length=100)
    system_prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="The panel's values; stop is a list of strings.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "last settings"
        constraints = [models.UniqueConstraint(fields=["user", "model_id"], name="last_settings_unique_per_model")]

    def __str__(self) -> str:
        return f"{self.user_id} · {self.model_id}"
