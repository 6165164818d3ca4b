from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.text import capfirst

from playground.tokens.limits import limits_status
from playground.tokens.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "label",
        "prefix",
        "user",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "requests_per_minute",
        "tokens_per_minute",
        "spend_per_day",
        "spend_per_month",
    )
    list_filter = ("revoked_at",)
    search_fields = ("label", "prefix", "user__username")
    readonly_fields = ("digest", "prefix", "created_at", "last_used_at", "limits_now")
    fieldsets = (
        (None, {"fields": ("user", "label", "digest", "prefix", "created_at", "last_used_at")}),
        ("Validity", {"fields": ("expires_at", "revoked_at")}),
        (
            "Limits (empty: no limit)",
            {
                "fields": (
                    "requests_per_minute",
                    "tokens_per_minute",
                    "spend_per_day",
                    "spend_per_month",
                    "limits_now",
                ),
                "description": "A request over a limit gets a 429 rate_limit_exceeded. Per minute is the last 60 s; "
                "days and months are UTC; spend is the usage ledger's cost (USD).",
            },
        ),
    )

    @admin.display(description="Used and left now")
    def limits_now(self, obj: ApiToken) -> str:
        if obj.pk is None:
            return "-"
        return format_html_join(
            "",
            "<div>{}: {} used, {}</div>",
            (
                (capfirst(s.label), s.used_display, "no limit" if s.unlimited else f"{s.left_display} left")
                for s in limits_status(token=obj)
            ),
        )
