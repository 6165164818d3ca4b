from django.contrib import admin

from playground.bulk.models import BulkItem, BulkJob, Dataset, Prompt


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created_at")
    search_fields = ("name", "user__username")


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("dataset", "position", "source_line", "text")
    list_filter = ("dataset",)
    raw_id_fields = ("dataset",)


@admin.register(BulkJob)
class BulkJobAdmin(admin.ModelAdmin):
    list_display = ("pk", "user", "dataset", "model_id", "status", "total", "created_at", "finished_at")
    list_filter = ("status", "model_id")
    search_fields = ("user__username", "dataset__name")
    raw_id_fields = ("dataset",)


@admin.register(BulkItem)
class BulkItemAdmin(admin.ModelAdmin):
    list_display = ("job", "prompt", "state", "worker", "finish_reason", "completion_tokens", "latency_ms")
    list_filter = ("state",)
    raw_id_fields = ("job", "prompt")
