from django.contrib import admin

from playground.chat.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = (
        "parent",
        "role",
        "content",
        "tool_calls",
        "tool_call_id",
        "model_id",
        "params",
        "prompt_tokens",
        "completion_tokens",
        "ttft_ms",
        "tokens_per_second",
        "finish_reason",
        "dropped_messages",
        "created_at",
    )
    readonly_fields = ("created_at",)
    raw_id_fields = ("parent",)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "user", "model_id", "overflow", "updated_at")
    list_filter = ("model_id", "overflow")
    search_fields = ("title", "user__username")
    raw_id_fields = ("user", "leaf")
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "conversation",
        "parent",
        "role",
        "model_id",
        "prompt_tokens",
        "completion_tokens",
        "finish_reason",
        "dropped_messages",
    )
    list_filter = ("role", "model_id", "finish_reason")
    search_fields = ("content",)
    raw_id_fields = ("conversation", "parent")
