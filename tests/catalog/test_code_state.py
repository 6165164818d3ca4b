"""Get Code is the Playground: the snippets carry the Playground's state (model, system prompt, the conversation's
history and the draft, every parameter, tools), posted by the page; else the user's last-used settings; else the
model's defaults. Another user's conversation is a 404."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from playground.catalog.snippets import MAX_HISTORY_MESSAGES, history_window
from playground.chat.models import Conversation, Message
from playground.presets.models import LastSettings
from tests.catalog.test_snippets import run_python_openai, run_python_requests

pytestmark = pytest.mark.django_db

PANEL = {
    "temperature": "0",
    "top_p": "0.9",
    "top_k": "20",
    "min_p": "0.05",
    "max_tokens": "24",
    "presence_penalty": "0",
    "frequency_penalty": "0",
    "repetition_penalty": "1.05",
    "seed": "7",
    "stop": "END",
}


def snippet_code(response: Any, key: str) -> str:
    body = response.content.decode()
    match = re.search(rf'<code id="snippet-{key}"[^>]*>(.*?)</code>', body, re.S)
    assert match, body
    return unescape(match.group(1))


def request_body(response: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The JSON body the Python (requests) snippet on the page sends."""
    return run_python_requests(snippet_code(response, "python"), tmp_path, monkeypatch)["json"]


@pytest.fixture
def conversation(user):
    conversation = Conversation.objects.create(user=user, model_id="fake-chat", system_prompt="Saved system.")
    Message.objects.create(conversation=conversation, role="user", content="What is the weather in Paris?")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="",
        tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": '{"location": "Paris"}'}],
        model_id="fake-chat",
        params={"temperature": 0.2},
    )
    Message.objects.create(conversation=conversation, role="tool", content='{"sky": "sunny"}', tool_call_id="call_1")
    Message.objects.create(
        conversation=conversation, role="assistant", content="It is sunny.", model_id="fake-chat", params={}
    )
    return conversation


HISTORY = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "content": '{"sky": "sunny"}', "tool_call_id": "call_1"},
    {"role": "assistant", "content": "It is sunny."},
]


def post_code(client, model_id: str = "fake-chat", **fields: str):
    return client.post(reverse("card_code", args=[model_id]), {**PANEL, **fields})


def test_snippets_carry_the_system_prompt_the_draft_and_every_parameter(client, user, fake_pool, tmp_path, monkeypatch):
    client.force_login(user)
    response = post_code(client, system="Be brief.", content="Say hello.")
    assert response.status_code == 200
    assert 'data-state="playground"' in response.content.decode()
    body = request_body(response, tmp_path, monkeypatch)
    assert body["model"] == "fake-chat"
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]
    assert body["temperature"] == 0 and body["top_p"] == 0.9 and body["max_tokens"] == 24 and body["seed"] == 7
    assert body["top_k"] == 20 and body["min_p"] == 0.05 and body["repetition_penalty"] == 1.05
    assert body["stop"] == ["END"]
    (_, (_, kwargs)) = run_python_openai(snippet_code(response, "openai"), tmp_path, monkeypatch)
    assert kwargs["messages"] == body["messages"]
    assert kwargs["extra_body"] == {"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.05}


def test_the_conversation_history_comes_in_openai_shape_before_the_draft(
    client, user, conversation, fake_pool, tmp_path, monkeypatch
):
    client.force_login(user)
    # The system prompt as set now (not as saved), the turns with their calls and results, then the draft.
    response = post_code(client, system="New system.", content="And tomorrow?", conversation=str(conversation.pk))
    body = request_body(response, tmp_path, monkeypatch)
    assert body["messages"] == [
        {"role": "system", "content": "New system."},
        *HISTORY,
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert "the conversation so far (4 messages) and the message you are writing" in response.content.decode()


def test_without_a_draft_the_snippet_is_what_regenerate_sends(
    client, user, conversation, fake_pool, tmp_path, monkeypatch
):
    client.force_login(user)
    response = post_code(client, system="", content="  ", conversation=str(conversation.pk))
    body = request_body(response, tmp_path, monkeypatch)
    assert body["messages"] == HISTORY[:3]  # up to the last prompt (the tool result); no system prompt set
    assert "up to its last prompt (what Regenerate sends)" in response.content.decode()


def test_another_users_conversation_is_404(client, user, other_user, conversation, fake_pool):
    client.force_login(other_user)
    assert post_code(client, conversation=str(conversation.pk)).status_code == 404
    assert post_code(client, conversation="x").status_code == 404
    client.logout()
    assert post_code(client, conversation=str(conversation.pk)).status_code == 404
    response = client.get(reverse("card", args=["fake-chat"]), {"tab": "code", "conversation": conversation.pk})
    assert response.status_code == 404


def test_a_long_conversation_is_cut_to_its_latest_turns_with_a_note(client, user, fake_pool, tmp_path, monkeypatch):
    conversation = Conversation.objects.create(user=user, model_id="fake-chat")
    for turn in range(30):
        Message.objects.create(conversation=conversation, role="user", content=f"question {turn}")
        Message.objects.create(conversation=conversation, role="assistant", content=f"answer {turn}")
    client.force_login(user)
    response = post_code(client, content="last", conversation=str(conversation.pk))
    body = request_body(response, tmp_path, monkeypatch)
    assert len(body["messages"]) == MAX_HISTORY_MESSAGES + 1
    assert body["messages"][0] == {"role": "user", "content": "question 10"}  # starts at a user message
    assert body["messages"][-1] == {"role": "user", "content": "last"}
    assert f"its latest {MAX_HISTORY_MESSAGES} of 60 messages" in response.content.decode()


def test_history_window_starts_at_a_user_message_and_keeps_the_last_one():
    history = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}] * 3
    assert history_window(history) == (history, 0)
    huge = [{"role": "user", "content": "x" * 30_000}, {"role": "assistant", "content": "a"}]
    assert history_window([*history, *huge]) == (huge, 6)
    calls = {"role": "assistant", "content": None, "tool_calls": [{"function": {"arguments": "y" * 30_000}}]}
    assert history_window([{"role": "user", "content": "q"}, calls]) == ([{"role": "user", "content": "q"}, calls], 0)


def test_the_tab_uses_the_last_used_settings_then_the_defaults(client, user, fake_pool, tmp_path, monkeypatch):
    url = reverse("card", args=["fake-chat"])
    response = client.get(url, {"tab": "code"})  # anonymous: the model's defaults
    assert 'data-state="defaults"' in response.content.decode()
    assert request_body(response, tmp_path, monkeypatch)["temperature"] == 0.5
    LastSettings.objects.create(
        user=user,
        model_id="fake-chat",
        system_prompt="Remembered system.",
        params={"temperature": 0.3, "max_tokens": 99_999, "stop": ["STOP"], "seed": None},
    )
    client.force_login(user)
    response = client.get(url, {"tab": "code"})
    assert "the settings of your latest reply from this model" in response.content.decode()
    body = request_body(response, tmp_path, monkeypatch)
    assert body["temperature"] == 0.3 and body["stop"] == ["STOP"]
    assert body["max_tokens"] == 64  # past this model's context: the catalog's default instead
    assert body["messages"][0] == {"role": "system", "content": "Remembered system."}
    assert body["messages"][1]["role"] == "user"  # an example question


def test_completion_snippets_take_the_draft_as_the_prompt(client, user, fake_pool, tmp_path, monkeypatch):
    client.force_login(user)
    response = post_code(client, "fake-completion", content="Once upon a time", system="ignored")
    body = request_body(response, tmp_path, monkeypatch)
    assert body["prompt"] == "Once upon a time" and "messages" not in body and body["min_p"] == 0.05


def test_the_code_tab_and_the_panel_link_load_the_state_script(client, user, fake_pool):
    client.force_login(user)
    body = client.get(reverse("card", args=["fake-chat"]), {"tab": "code"}).content.decode()
    assert "js/playground_state.js" in body and f'data-code-url="{reverse("card_code", args=["fake-chat"])}"' in body
    body = client.get(reverse("card", args=["fake-chat"]), {"tab": "playground"}).content.decode()
    assert 'href="?tab=code" data-get-code' in body


def test_unknown_model_is_404(client, fake_pool):
    assert client.post(reverse("card_code", args=["nope"]), PANEL).status_code == 404


def test_turns_the_playground_left_out_to_fit_are_left_out_of_the_snippet_too(
    client, user, fake_pool, tmp_path, monkeypatch
):
    conversation = Conversation.objects.create(user=user, model_id="fake-chat")
    parent = None
    for turn in range(3):
        parent = Message.objects.create(conversation=conversation, role="user", content=f"q{turn}", parent=parent)
        parent = Message.objects.create(
            conversation=conversation, role="assistant", content=f"a{turn}", parent=parent, dropped_messages=2 * turn
        )
    conversation.leaf = parent
    conversation.save()
    client.force_login(user)
    # The latest reply's prompt (q0 a0 q1 a1 q2) went without its 4 oldest messages: so does Regenerate's snippet.
    response = post_code(client, content="", conversation=str(conversation.pk))
    assert request_body(response, tmp_path, monkeypatch)["messages"] == [{"role": "user", "content": "q2"}]
    body = response.content.decode()
    assert "its latest 1 message, up to its last prompt" in body and "The 4 oldest are left out" in body
    response = post_code(client, content="q3", conversation=str(conversation.pk))
    assert [m["content"] for m in request_body(response, tmp_path, monkeypatch)["messages"]] == ["q2", "a2", "q3"]
