from __future__ import annotations

from django.db import models


class ModelStats(models.Model):
    """Speed of one model as measured by this server from real requests (exponential moving averages)."""

    model_id = models.CharField(max_length=200, unique=True)
    text_samples = models.PositiveIntegerField(default=0)
    tokens_per_second = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    speech_samples = models.PositiveIntegerField(default=0)
    real_time_factor = models.FloatField(null=True, blank=True)  # seconds of work per second of audio
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "model stats"

    def __str__(self) -> str:
        return self.model_id
