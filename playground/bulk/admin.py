from django.contrib import admin

from playground.bulk.models import Dataset, Prompt


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created_at")
    search_fields = ("name", "user__username")


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("dataset", "position", "source_line", "text")
    list_filter = ("dataset",)
