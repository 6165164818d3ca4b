"""Conversation pages: list, open, new, rename, delete; owner only (another user gets 404)."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from playground.catalog.forms import SamplingForm
from playground.chat.models import Conversation, Message
from playground.chat.selectors import conversation_messages, text_models

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(user):
    conversation = Conversation.objects.create(user=user, model_id="fake-chat", title="Mine <b>bold</b>")
    Message.objects.create(conversation=conversation, role="user", content="hi")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="**hello** <script>alert(1)</script>",
        model_id="fake-chat",
        params={"temperature": 0.5},
        prompt_tokens=3,
        completion_tokens=4,
        ttft_ms=12.5,
        tokens_per_second=40.0,
        finish_reason="stop",
    )
    return conversation


@pytest.fixture
def theirs(other_user):
    return Conversation.objects.create(user=other_user, model_id="fake-chat", title="Their secret")


def test_list_shows_only_my_conversations(client, user, conversation, theirs, fake_pool):
    client.force_login(user)
    response = client.get(reverse("chat:list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Mine &lt;b&gt;bold&lt;/b&gt;" in body  # titles are escaped
    assert "Fake Chat" in body
    assert "Their secret" not in body


def test_list_needs_a_login(client):
    response = client.get(reverse("chat:list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_open_goes_to_the_models_playground_with_the_conversation(client, user, conversation, fake_pool):
    client.force_login(user)
    response = client.get(reverse("chat:open", args=[conversation.pk]))
    assert response.status_code == 302
    assert (
        response["Location"] == f"{reverse('card', args=['fake-chat'])}?tab=playground&conversation={conversation.pk}"
    )


def test_open_on_another_chat_model_keeps_the_conversation(client, user, conversation, fake_pool):
    client.force_login(user)
    response = client.get(reverse("chat:open", args=[conversation.pk]) + "?model=fake-embed")
    assert response["Location"].startswith(reverse("card", args=["fake-chat"]))  # not a chat model: ignored


def test_new_opens_an_empty_playground(client, user, fake_pool):
    client.force_login(user)
    response = client.get(reverse("chat:new") + "?model=fake-chat")
    assert response["Location"] == f"{reverse('card', args=['fake-chat'])}?tab=playground"
    response = client.get(reverse("chat:new"))
    assert response["Location"] == f"{reverse('card', args=['fake-chat'])}?tab=playground"  # the first chat model
    assert Conversation.objects.count() == 0


def test_rename(client, user, conversation, fake_pool):
    client.force_login(user)
    response = client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "  Renamed  "})
    assert response.status_code == 302 and response["Location"] == reverse("chat:list")
    conversation.refresh_from_db()
    assert conversation.title == "Renamed"
    response = client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "   "})
    assert response.status_code == 400
    assert "A title cannot be blank." in response.content.decode()


def test_delete(client, user, conversation, fake_pool):
    client.force_login(user)
    response = client.post(reverse("chat:delete", args=[conversation.pk]))
    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.exists()
    assert client.get(reverse("chat:delete", args=[conversation.pk])).status_code == 405


def test_every_conversation_url_is_404_for_another_user(client, other_user, conversation, fake_pool):
    client.force_login(other_user)
    assert client.get(reverse("chat:open", args=[conversation.pk])).status_code == 404
    assert client.get(reverse("chat:rename", args=[conversation.pk])).status_code == 404
    assert client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "x"}).status_code == 404
    assert client.post(reverse("chat:delete", args=[conversation.pk])).status_code == 404
    conversation.refresh_from_db()
    assert conversation.title == "Mine <b>bold</b>"


def _playground_context(rf, user, fake_pool, conversation=None) -> dict:
    spec = fake_pool.spec("fake-chat")
    request = rf.get("/models/fake-chat/?tab=playground")
    request.user = user
    return {
        "request": request,
        "user": user,
        "spec": spec,
        "params_form": SamplingForm(spec=spec),
        "text_models": text_models(),
        "conversation": conversation,
        "conversations": [conversation] if conversation else [],
        "chat_messages": conversation_messages(conversation),
    }


def test_playground_renders_history_escaped_with_usage_and_the_panel(rf, user, conversation, fake_pool):
    html = render_to_string("chat/_playground.html", _playground_context(rf, user, fake_pool, conversation))
    assert "**hello** &lt;script&gt;alert(1)&lt;/script&gt;" in html  # raw text, escaped; markdown.js renders it
    assert "<script>alert(1)" not in html
    assert "3 prompt + 4 completion tokens · TTFT 13 ms · 40.0 tok/s · finish: stop" in html
    assert f'data-conversation="{conversation.pk}"' in html
    assert '<form id="params" class="params"' in html
    assert 'id="id_temperature_range" data-pair="id_temperature"' in html
    assert 'id="id_temperature" name="temperature" data-pair="id_temperature_range"' in html
    assert 'value="0.5"' in html  # the catalog default
    assert 'max="2048"' in html  # max tokens bounded by the model's context
    assert "data-get-code" in html and "js/playground_state.js" in html
    assert '<option value="fake-chat" selected>Fake Chat</option>' in html
    assert "fake-completion" not in html  # the picker lists chat models only
    assert "js/markdown.js" in html and "js/chat.js" in html


def test_playground_for_a_new_conversation_and_for_anonymous_visitors(rf, user, fake_pool):
    html = render_to_string("chat/_playground.html", _playground_context(rf, user, fake_pool))
    assert 'data-conversation=""' in html and "New conversation" in html
    from django.contrib.auth.models import AnonymousUser

    html = render_to_string("chat/_playground.html", _playground_context(rf, AnonymousUser(), fake_pool))
    assert "Log in" in html and "chat-app" not in html


def test_completion_template_has_the_prompt_and_the_same_panel(rf, user, fake_pool):
    spec = fake_pool.spec("fake-completion")
    context = {**_playground_context(rf, user, fake_pool), "spec": spec, "params_form": SamplingForm(spec=spec)}
    html = render_to_string("chat/_completion.html", context)
    assert 'data-mode="completion"' in html and 'data-model="fake-completion"' in html
    assert 'id="completion-prompt"' in html and '<form id="params" class="params"' in html
    assert "js/chat.js" in html


def test_admin_sees_conversations_and_messages(client, django_user_model, conversation, theirs, fake_pool):
    admin = django_user_model.objects.create_superuser("admin", password="pw-admin-123!")
    client.force_login(admin)
    body = client.get(reverse("admin:chat_conversation_changelist")).content.decode()
    assert "Their secret" in body and "Mine &lt;b&gt;bold&lt;/b&gt;" in body
    assert client.get(reverse("admin:chat_conversation_change", args=[conversation.pk])).status_code == 200
    assert client.get(reverse("admin:chat_message_changelist")).status_code == 200


def test_card_playground_opens_my_conversation_and_404s_for_anyone_elses(client, user, conversation, theirs, fake_pool):
    client.force_login(user)
    url = reverse("card", args=["fake-chat"])
    response = client.get(url, {"tab": "playground", "conversation": conversation.pk})
    body = response.content.decode()
    assert response.status_code == 200
    assert f'data-conversation="{conversation.pk}"' in body
    assert "**hello** &lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert client.get(url, {"tab": "playground", "conversation": theirs.pk}).status_code == 404
    assert client.get(url, {"tab": "playground", "conversation": "x"}).status_code == 404
    body = client.get(reverse("card", args=["fake-completion"]), {"tab": "playground"}).content.decode()
    assert 'id="completion-app"' in body


def test_list_searches_titles_and_message_text_of_my_conversations_only(client, user, conversation, theirs, fake_pool):
    Message.objects.create(conversation=theirs, role="user", content="hello from them")
    other = Conversation.objects.create(user=user, model_id="fake-chat", title="Cooking")
    Message.objects.create(conversation=other, role="user", content="A recipe for Ratatouille, please")
    client.force_login(user)
    url = reverse("chat:list")
    body = client.get(url, {"q": "ratatouille"}).content.decode()
    assert f'id="conversation-{other.pk}"' in body and f'id="conversation-{conversation.pk}"' not in body
    body = client.get(url, {"q": "BOLD"}).content.decode()  # the title, case-insensitive
    assert f'id="conversation-{conversation.pk}"' in body and f'id="conversation-{other.pk}"' not in body
    body = client.get(url, {"q": "hello"}).content.decode()  # my reply says hello; theirs is not searched
    assert f'id="conversation-{conversation.pk}"' in body and "Their secret" not in body
    body = client.get(url, {"q": "nothing like this"}).content.decode()
    assert "No conversation matches “nothing like this”." in body
    assert 'value="nothing like this"' in body


def test_list_is_paged_and_htmx_gets_only_the_results(client, user, fake_pool):
    from playground.chat.views import PAGE_SIZE

    for number in range(PAGE_SIZE + 3):
        Conversation.objects.create(user=user, model_id="fake-chat", title=f"Chat number {number}")
    client.force_login(user)
    url = reverse("chat:list")
    body = client.get(url, {"q": "number"}).content.decode()
    assert body.count('<tr id="conversation-') == PAGE_SIZE
    assert f"Page 1 of 2 ({PAGE_SIZE + 3} conversations)" in body and 'rel="next"' in body
    assert "?q=number&amp;page=2" in body
    response = client.get(url, {"q": "number", "page": "2"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="conversation-results">') and "<html" not in body
    assert body.count('<tr id="conversation-') == 3 and 'rel="prev"' in body
    assert client.get(url, {"page": "999"}).status_code == 200  # past the end: the last page


def test_list_and_playground_offer_the_exports(client, user, conversation, fake_pool):
    client.force_login(user)
    body = client.get(reverse("chat:list")).content.decode()
    assert f'href="{reverse("chat:export_md", args=[conversation.pk])}"' in body
    assert f'href="{reverse("chat:export_json", args=[conversation.pk])}"' in body
    url = reverse("card", args=["fake-chat"])
    body = client.get(url, {"tab": "playground", "conversation": conversation.pk}).content.decode()
    assert f'id="export-md" download href="{reverse("chat:export_md", args=[conversation.pk])}"' in body
    body = client.get(url, {"tab": "playground"}).content.decode()
    assert 'id="chat-export" hidden' in body  # shown by playground_state.js once the first message is saved
