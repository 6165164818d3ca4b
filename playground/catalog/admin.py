from django.contrib import admin

from playground.catalog.models import ModelStats


@admin.register(ModelStats)
class ModelStatsAdmin(admin.ModelAdmin):
    list_display = ("model_id", "tokens_per_second", "ttft_ms", "real_time_factor", "text_samples", "speech_samples")
