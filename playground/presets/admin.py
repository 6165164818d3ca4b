from django.contrib import admin

from playground.presets.models import LastSettings, Preset


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "updated_at")
    search_fields = ("name", "user__username")


@admin.register(LastSettings)
class LastSettingsAdmin(admin.ModelAdmin):
    list_display = ("user", "model_id", "updated_at")
    list_filter = ("model_id",)
    search_fields = ("user__username",)
