from django.contrib import admin

from playground.projects.models import Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "personal_of", "created_at")
    search_fields = ("name", "personal_of__username", "memberships__user__username")
    raw_id_fields = ("personal_of",)
    inlines = [MembershipInline]
