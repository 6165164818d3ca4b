from django.contrib import admin

from playground.tokens.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("label", "prefix", "user", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("label", "prefix", "user__username")
    readonly_fields = ("digest", "prefix", "created_at", "last_used_at")
