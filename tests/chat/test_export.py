"""A conversation exported as Markdown and as JSON (OpenAI's messages, tool calls and results included), by its
owner only."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from playground.chat.models import Conversation, Message
from playground.contract import openai as contract
from playground.contract.fields import parse

pytestmark = pytest.mark.django_db

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


@pytest.fixture
def conversation(user):
    conversation = Conversation.objects.create(
        user=user,
        model_id="fake-chat",
        title="Weather in Paris?",
        system_prompt="You are helpful.",
        tools=TOOLS,
        tool_choice="auto",
        parallel_tool_calls=True,
    )
    Message.objects.create(conversation=conversation, role="user", content="Weather in Paris?")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="",
        tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": '{"location":"Paris"}'}],
        model_id="fake-chat",
        params={"temperature": 0.2},
    )
    Message.objects.create(conversation=conversation, role="tool", content='{"sky":"sunny"}', tool_call_id="call_1")
    Message.objects.create(conversation=conversation, role="assistant", content="It is **sunny**.\n\n```\ncode\n```")
    Message.objects.create(conversation=conversation, role="assistant", content="")  # stopped before a token
    return conversation


def test_json_export_is_openai_messages_with_calls_and_results(client, user, conversation):
    client.force_login(user)
    response = client.get(reverse("chat:export_json", args=[conversation.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="weather-in-paris-{conversation.pk}.json"'
    data = json.loads(response.content)
    assert data["model"] == "fake-chat"
    assert data["messages"] == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": '{"sky":"sunny"}', "tool_call_id": "call_1"},
        {"role": "assistant", "content": "It is **sunny**.\n\n```\ncode\n```"},
    ]
    assert data["tools"] == TOOLS and data["tool_choice"] == "auto" and data["parallel_tool_calls"] is True
    assert "response_format" not in data
    assert data["metadata"]["title"] == "Weather in Paris?" and data["metadata"]["conversation_id"] == conversation.pk
    # The export is a request /v1/chat/completions takes (without the metadata).
    body = {key: value for key, value in data.items() if key != "metadata"}
    assert parse(contract.ChatCompletionRequest, body, where="test").messages[2].tool_calls


def test_markdown_export_reads_as_the_conversation(client, user, conversation):
    client.force_login(user)
    response = client.get(reverse("chat:export_md", args=[conversation.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="weather-in-paris-{conversation.pk}.md"'
    text = response.content.decode()
    assert text.startswith("# Weather in Paris?\n\n- Model: `fake-chat`\n")
    assert "- Tools: `get_weather`" in text
    assert "## System prompt\n\nYou are helpful.\n" in text
    assert "## User\n\nWeather in Paris?\n" in text
    assert 'Calls `get_weather` (`call_1`):\n\n```json\n{\n  "location": "Paris"\n}\n```' in text
    assert '## Tool result of `get_weather` (`call_1`)\n\n```json\n{\n  "sky": "sunny"\n}\n```' in text
    assert "## Assistant\n\nIt is **sunny**.\n\n```\ncode\n```\n" in text  # the reply's own Markdown, as written
    assert text.count("## Assistant") == 2  # the empty reply is left out, as the model is never sent it


def test_a_tool_result_with_backticks_keeps_its_fence_closed(client, user, conversation):
    Message.objects.filter(role="tool").update(content="not json ```` still")
    client.force_login(user)
    text = client.get(reverse("chat:export_md", args=[conversation.pk])).content.decode()
    assert "`````\nnot json ```` still\n`````" in text


def test_export_is_the_owners_only(client, user, other_user, conversation):
    for name in ("chat:export_md", "chat:export_json"):
        url = reverse(name, args=[conversation.pk])
        assert client.get(url).status_code == 302  # a login first
        client.force_login(other_user)
        assert client.get(url).status_code == 404
        client.force_login(user)
        assert client.post(url).status_code == 405
        client.logout()


def test_untitled_conversation_gets_a_plain_filename(client, user):
    conversation = Conversation.objects.create(user=user, model_id="fake-chat", title='Ünïcode ✨ / "quotes"')
    client.force_login(user)
    response = client.get(reverse("chat:export_md", args=[conversation.pk]))
    assert response["Content-Disposition"] == f'attachment; filename="unicode-quotes-{conversation.pk}.md"'
    assert response.content.decode().startswith('# Ünïcode ✨ / "quotes"\n')
    assert json.loads(client.get(reverse("chat:export_json", args=[conversation.pk])).content)["messages"] == []
