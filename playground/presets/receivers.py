"""Signal receivers: the settings of every saved chat reply are remembered for its user and model."""

from __future__ import annotations

from typing import Any

from playground.chat.models import Conversation, Message
from playground.presets.services import last_settings_remember


def remember_reply_settings(
    sender: type[Message], instance: Message, created: bool, raw: bool = False, **_: Any
) -> None:
    if not created or raw or instance.role != Message.Role.ASSISTANT or not isinstance(instance.params, dict):
        return
    conversation: Conversation = instance.conversation
    last_settings_remember(
        user_id=conversation.user_id,
        model_id=instance.model_id or conversation.model_id,
        params=instance.params,
        system_prompt=conversation.system_prompt,
    )
