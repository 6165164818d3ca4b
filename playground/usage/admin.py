from django.contrib import admin
from django.http import HttpRequest

from playground.usage.models import PriceVersion, UsageRecord


@admin.register(PriceVersion)
class PriceVersionAdmin(admin.ModelAdmin):
    """Staff change a price by adding a version effective from a time; versions already charged never change."""

    list_display = (
        "model_id",
        "effective_from",
        "input_per_million_tokens",
        "output_per_million_tokens",
        "per_audio_minute",
        "per_million_characters",
        "per_request",
        "note",
    )
    list_filter = ("model_id",)

    def has_change_permission(self, request: HttpRequest, obj: PriceVersion | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: PriceVersion | None = None) -> bool:
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "user",
        "model_id",
        "endpoint",
        "source",
        "outcome",
        "prompt_tokens",
        "completion_tokens",
        "cost",
    )
    list_filter = ("source", "outcome", "model_id")
    search_fields = ("user__username", "request_id", "model_id")

    def has_change_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
