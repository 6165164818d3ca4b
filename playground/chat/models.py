"""Saved conversations: one per chat, its messages, and for each reply the parameters, usage and metrics."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models

from playground.projects.models import personal_project_id


def pretty_json(text: str) -> str:
    """JSON text indented for reading; text that is not JSON (a call cut short) as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


class Overflow(models.TextChoices):
    DROP_OLDEST = "drop_oldest", "Leave out the oldest turns"
    REFUSE = "refuse", "Refuse the message"


class Conversation(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    # The project it belongs to (the user above is who did it). Nullable only for the migration that filled it: save()
    # fills it when the caller names none.
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="conversations"
    )
    project_id: int | None  # its column, for type checking
    model_id = models.CharField(max_length=100, help_text="The model of the latest reply.")
    title = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(blank=True)
    # The Tools panel and the reply format, in OpenAI's shapes, as the latest turn sent them.
    tools = models.JSONField(default=list, blank=True, help_text='[{"type": "function", "function": {...}}, ...]')
    tool_choice = models.JSONField(null=True, blank=True, help_text='"auto", "none", "required" or a named function.')
    parallel_tool_calls = models.BooleanField(null=True, blank=True)
    response_format = models.JSONField(null=True, blank=True, help_text="null: free text.")
    # What a turn does when the history and max tokens do not fit the model's context (inference.types.Overflow).
    overflow = models.CharField(max_length=16, choices=Overflow.choices, default=Overflow.DROP_OLDEST)
    # The end of the branch shown: the conversation is the path from its first message down to this one (edits and
    # regenerated replies are other branches, kept). Null: nothing yet, or rows saved before branches existed.
    leaf = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", help_text="The branch shown."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["user", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.project_id is None:  # a caller that names no project: the user's personal project
            self.project_id = personal_project_id(self.user_id)
        super().save(*args, **kwargs)

    def tool_fields(self) -> dict[str, Any]:
        """The saved tool fields as a socket frame carries them."""
        return {
            "tools": self.tools or None,
            "tool_choice": self.tool_choice,
            "parallel_tool_calls": self.parallel_tool_calls,
            "response_format": self.response_format,
        }

    @property
    def tools_text(self) -> str:
        """The Tools panel's editor content."""
        return json.dumps(self.tools, indent=2, ensure_ascii=False) if self.tools else ""

    @property
    def tool_choice_value(self) -> str:
        """The tool_choice picker's value: auto, none, required or a function's name."""
        choice = self.tool_choice
        if isinstance(choice, dict):
            return str((choice.get("function") or {}).get("name", "auto"))
        return choice if isinstance(choice, str) else "auto"

    @property
    def format_type(self) -> str:
        """The reply format switch: text, json_object or json_schema."""
        return str((self.response_format or {}).get("type") or "text")

    @property
    def schema_name(self) -> str:
        return str(((self.response_format or {}).get("json_schema") or {}).get("name") or "")

    @property
    def schema_text(self) -> str:
        schema = ((self.response_format or {}).get("json_schema") or {}).get("schema")
        return json.dumps(schema, indent=2, ensure_ascii=False) if schema is not None else ""


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"
        TOOL = "tool"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    # The message this one follows (null: the conversation's first). Messages with the same parent are versions of
    # one turn: an edited message, a regenerated reply. Deleting a message deletes what follows it on its branch.
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="children")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    # An assistant reply's calls, [{"id", "name", "arguments" (JSON text)}]; null when it made none.
    tool_calls = models.JSONField(null=True, blank=True)
    # A tool message: the call (of the assistant message before it) whose result this is.
    tool_call_id = models.CharField(max_length=100, blank=True)
    # Assistant replies only: what produced them and what they cost.
    model_id = models.CharField(max_length=100, blank=True)
    params = models.JSONField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    finish_reason = models.CharField(max_length=16, blank=True)
    # How many of the oldest messages were left out of the prompt so that the rest fit the context.
    dropped_messages = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def is_assistant(self) -> bool:
        return self.role == self.Role.ASSISTANT

    @property
    def is_tool(self) -> bool:
        return self.role == self.Role.TOOL

    def call_cards(self) -> list[dict[str, str]]:
        """The reply's calls for display: id, name and the arguments pretty-printed."""
        return [
            {
                "id": str(c.get("id", "")),
                "name": str(c.get("name", "")),
                "arguments": pretty_json(str(c.get("arguments", ""))),
            }
            for c in self.tool_calls or []
            if isinstance(c, dict)
        ]
