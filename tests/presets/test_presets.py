"""Presets (name, system prompt, parameters) saved, listed, replaced and deleted by their owner only; the settings
of a user's latest reply remembered per model; the Playground starting from them (a new chat) or from the
conversation's latest reply (a reopened conversation)."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from playground.chat.models import Conversation, Message
from playground.presets.models import LastSettings, Preset
from playground.presets.selectors import last_settings_get

pytestmark = pytest.mark.django_db

PANEL = {"temperature": "0.3", "max_tokens": "50", "top_k": "12", "seed": "", "stop": "END\nSTOP"}


def save(client, **fields: str):
    data = {"name": "Terse", "system_prompt": "Be terse.", "model": "fake-chat", **PANEL, **fields}
    return client.post(reverse("presets:index"), data)


def panel_value(html: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert tag, name
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return value.group(1) if value else ""


def test_a_saved_preset_is_listed_and_saving_the_same_name_replaces_it(client, user, fake_pool):
    client.force_login(user)
    response = save(client)
    assert response.status_code == 201
    preset = response.json()
    assert preset["name"] == "Terse" and preset["system_prompt"] == "Be terse."
    assert preset["params"]["temperature"] == 0.3 and preset["params"]["stop"] == ["END", "STOP"]
    assert preset["params"]["seed"] is None and preset["params"]["top_p"] == 1.0  # blank: the model's default
    again = save(client, name="  Terse ", system_prompt="", temperature="1.2").json()
    assert again["id"] == preset["id"] and again["system_prompt"] == "" and again["params"]["temperature"] == 1.2
    save(client, name="Another")
    names = [p["name"] for p in client.get(reverse("presets:index")).json()["presets"]]
    assert names == ["Another", "Terse"]


def test_a_refused_value_is_named_with_the_sockets_message(client, user, fake_pool):
    client.force_login(user)
    response = save(client, temperature="9")
    assert response.status_code == 400
    assert response.json()["param"] == "temperature" and "temperature" in response.json()["error"]
    assert save(client, max_tokens="4096").json()["param"] == "max_tokens"  # past fake-chat's 2048 context
    assert save(client, name="   ").json() == {"error": "Give the preset a name.", "param": "name"}
    assert save(client, model="fake-embed").json()["param"] == "model"
    assert save(client, model="nope").json()["param"] == "model"
    assert not Preset.objects.exists()


def test_presets_are_their_owners_only(client, user, other_user, fake_pool):
    client.force_login(user)
    preset_id = save(client).json()["id"]
    client.force_login(other_user)
    assert client.get(reverse("presets:index")).json() == {"presets": []}
    assert client.post(reverse("presets:delete", args=[preset_id])).status_code == 404
    body = client.get(reverse("card", args=["fake-chat"]), {"tab": "playground"}).content.decode()
    assert "Terse" not in body
    save(client, system_prompt="theirs")  # the same name is another user's own preset
    assert Preset.objects.get(pk=preset_id).system_prompt == "Be terse."
    client.force_login(user)
    assert client.get(reverse("presets:delete", args=[preset_id])).status_code == 405
    assert client.post(reverse("presets:delete", args=[preset_id])).json() == {"deleted": preset_id}
    assert not Preset.objects.filter(user=user).exists() and Preset.objects.filter(user=other_user).exists()


def test_presets_need_a_login(client, fake_pool):
    assert client.get(reverse("presets:index")).status_code == 302
    assert save(client).status_code == 302


def test_the_playground_offers_the_presets_and_the_defaults(client, user, fake_pool):
    client.force_login(user)
    save(client, name='Quote " <b>')
    body = client.get(reverse("card", args=["fake-chat"]), {"tab": "playground"}).content.decode()
    assert 'id="preset-pick"' in body and '<option value="defaults">Model defaults</option>' in body
    assert "Quote &quot; &lt;b&gt;</option>" in body  # escaped
    match = re.search(r'data-params="([^"]*)">Quote', body)
    assert match and json.loads(match.group(1).replace("&quot;", '"'))["temperature"] == 0.3
    defaults = re.search(r'data-defaults="([^"]*)"', body)
    assert defaults and json.loads(defaults.group(1).replace("&quot;", '"'))["temperature"] == 0.5
    body = client.get(reverse("card", args=["fake-completion"]), {"tab": "playground"}).content.decode()
    assert 'id="preset-pick"' in body and 'id="chat-export"' not in body


def test_every_reply_remembers_its_settings_for_its_user_and_model(user, other_user, fake_pool):
    conversation = Conversation.objects.create(user=user, model_id="fake-chat", system_prompt="Sys one.")
    Message.objects.create(conversation=conversation, role="user", content="hi")
    assert last_settings_get(user=user, model_id="fake-chat") is None
    params = {"temperature": 0.2, "top_k": 5, "stop": ["x"], "seed": 3, "min_p": 0.0, "grammar": None}
    Message.objects.create(
        conversation=conversation, role="assistant", content="a", model_id="fake-chat", params=params
    )
    last = last_settings_get(user=user, model_id="fake-chat")
    assert last is not None and last.system_prompt == "Sys one."
    assert last.params == {"temperature": 0.2, "top_k": 5, "min_p": 0.0, "seed": 3, "stop": ["x"]}  # panel fields
    conversation.system_prompt = "Sys two."
    conversation.save()
    Message.objects.create(
        conversation=conversation, role="assistant", content="b", model_id="fake-chat", params={"temperature": 0.9}
    )
    assert LastSettings.objects.count() == 1
    last = last_settings_get(user=user, model_id="fake-chat")
    assert last is not None and last.params == {"temperature": 0.9} and last.system_prompt == "Sys two."
    assert last_settings_get(user=other_user, model_id="fake-chat") is None


def test_a_new_chat_starts_from_the_last_settings_and_a_conversation_from_its_latest_reply(client, user, fake_pool):
    client.force_login(user)
    url = reverse("card", args=["fake-chat"])
    body = client.get(url, {"tab": "playground"}).content.decode()
    assert panel_value(body, "temperature") == "0.5"  # nothing remembered: the catalog's default
    conversation = Conversation.objects.create(user=user, model_id="fake-chat", system_prompt="Old <system>")
    Message.objects.create(conversation=conversation, role="user", content="hi")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="a",
        model_id="fake-chat",
        params={"temperature": 0.25, "max_tokens": 33, "stop": ["A", "B"], "seed": 11},
    )
    body = client.get(url, {"tab": "playground"}).content.decode()
    assert panel_value(body, "temperature") == "0.25" and panel_value(body, "max_tokens") == "33"
    assert panel_value(body, "seed") == "11" and "\nA\nB</textarea>" in body
    assert 'data-remembered-system="Old &lt;system&gt;"' in body

    # Another conversation, whose latest reply used other values, reopens with those.
    other = Conversation.objects.create(user=user, model_id="fake-chat")
    Message.objects.create(conversation=other, role="user", content="q")
    LastSettings.objects.filter(user=user).update(params={"temperature": 1.5})
    Message.objects.filter(conversation=conversation).update(params={"temperature": 0.7})
    body = client.get(url, {"tab": "playground", "conversation": conversation.pk}).content.decode()
    assert panel_value(body, "temperature") == "0.7" and 'data-remembered-system=""' in body
    body = client.get(url, {"tab": "playground", "conversation": other.pk}).content.decode()
    assert panel_value(body, "temperature") == "0.5"  # no reply yet: the defaults, not another chat's values
