"""Finding conversations by their title and the text of their messages."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, Q, QuerySet

from playground.chat.models import Conversation, Message
from playground.chat.selectors import conversation_list
from playground.projects.models import Project

MAX_QUERY_LENGTH = 200


def conversation_search(
    *, user: AbstractBaseUser, query: str, project: Project | None = None
) -> QuerySet[Conversation]:
    """The user's conversations whose title or any message contains `query` (case-insensitive), most recently
    active first; every one for a blank query."""
    conversations = conversation_list(user=user, project=project)
    query = query.strip()[:MAX_QUERY_LENGTH]
    if not query:
        return conversations
    in_messages = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=query)
    return conversations.filter(Q(title__icontains=query) | Exists(in_messages))
