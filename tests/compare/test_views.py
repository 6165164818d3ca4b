"""The Compare page: signed-in users only, chat models only, 2 to 4 panes, scripts from files only."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_page_needs_a_login(client, compare_pool):
    response = client.get(reverse("compare:compare"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_page_offers_every_chat_model_in_each_pane(client, user, compare_pool):
    client.force_login(user)
    response = client.get(reverse("compare:compare"))
    assert response.status_code == 200
    html = response.content.decode()
    panes = re.findall(r'<section class="compare-pane" id="pane-(\d)"[^>]*?( hidden)?>', html)
    assert [(index, hidden) for index, hidden in panes] == [("0", ""), ("1", ""), ("2", " hidden"), ("3", " hidden")]
    for index in range(4):
        select = html.split(f'id="pane-{index}-model"')[1].split("</select>")[0]
        assert 'value="fake-chat"' in select and 'value="fake-chat-2"' in select
        assert "fake-completion" not in select and "fake-embed" not in select
    # Pane i starts on the i-th chat model; blank parameters show that model's defaults as placeholders.
    assert 'value="fake-chat-2" data-defaults=' in html
    pane_two = html.split('id="pane-1"')[1].split("</section>")[0]
    assert 'value="fake-chat-2" data-defaults="{&quot;temperature&quot;: 0.9' in pane_two
    assert re.search(r'value="fake-chat-2"[^>]*selected', pane_two)
    assert 'id="id_pane-1-temperature" name="temperature"' in pane_two
    # Every id on the page is unique, and every script is a file (the CSP forbids inline scripts).
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "js/compare.js" in html and "js/markdown.js" in html and "css/compare.css" in html


def test_the_number_of_panes_shown_can_be_asked_for(client, user, compare_pool):
    client.force_login(user)
    for asked, shown in (("3", 3), ("4", 4), ("9", 4), ("1", 2), ("many", 2)):
        html = client.get(reverse("compare:compare"), {"panes": asked}).content.decode()
        assert len(re.findall(r'<section class="compare-pane" id="pane-\d"(?![^>]*hidden)', html)) == shown, asked


def test_the_header_links_to_compare_for_signed_in_users(client, user, compare_pool):
    assert 'href="/compare/"' not in client.get("/").content.decode()
    client.force_login(user)
    assert 'href="/compare/"' in client.get("/").content.decode()
