from django.contrib import admin

from playground.endpoints.models import Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "model_id", "paused", "requests_per_minute", "created_at")
    list_filter = ("paused", "model_id")
    raw_id_fields = ("project", "created_by")
