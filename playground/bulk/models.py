from __future__ import annotations

from django.conf import settings
from django.db import models


class Dataset(models.Model):
    """A named set of prompts a user uploads (one CSV or several) and runs bulk jobs over."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="dataset_name_per_user")]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="prompts")
    position = models.PositiveIntegerField()  # order within the dataset, across uploads
    source_line = models.PositiveIntegerField()  # line in the uploaded file, for messages
    text = models.TextField()

    class Meta:
        ordering = ["dataset", "position"]
        constraints = [models.UniqueConstraint(fields=["dataset", "position"], name="one_prompt_per_position")]

    def __str__(self) -> str:
        return self.text[:60]
