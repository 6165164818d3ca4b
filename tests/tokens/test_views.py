"""The tokens page: create (shown once), list, revoke; owner only; the create form's validation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.tokens.forms import TokenCreateForm
from playground.tokens.hashing import PREFIX, RAW_LENGTH
from playground.tokens.models import ApiToken
from playground.tokens.services import token_authenticate, token_create

pytestmark = pytest.mark.django_db

RAW_PATTERN = re.compile(re.escape(PREFIX) + rf"[A-Za-z0-9_-]{{{RAW_LENGTH - len(PREFIX)}}}")


@pytest.fixture
def mine(user) -> ApiToken:
    return token_create(user=user, label="Mine <b>bold</b>")[0]


@pytest.fixture
def theirs(other_user) -> ApiToken:
    return token_create(user=other_user, label="Their secret token")[0]


def create(client, **data):
    return client.post(reverse("tokens:create"), {"label": "laptop", "expires": "30", **data})


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [("get", "tokens:list", []), ("post", "tokens:create", []), ("post", "tokens:revoke", [1])],
)
def test_pages_need_a_login(client, method, name, args):
    response = getattr(client, method)(reverse(name, args=args))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_urls_are_where_the_issue_says():
    assert reverse("tokens:list") == "/tokens/"
    assert reverse("tokens:revoke", args=[7]) == "/tokens/7/revoke/"


def test_list_shows_my_tokens_and_never_another_users(client, user, mine, theirs):
    client.force_login(user)
    response = client.get(reverse("tokens:list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Mine &lt;b&gt;bold&lt;/b&gt;" in body  # labels are escaped
    assert mine.prefix in body
    assert "Their secret token" not in body and theirs.prefix not in body
    assert f"token-{theirs.pk}" not in body


def test_list_shows_each_tokens_dates_and_state(client, user):
    client.force_login(user)
    active, raw = token_create(user=user, label="active one", expires_at=timezone.now() + timedelta(days=7))
    token_authenticate(raw=raw)
    expired, _ = token_create(user=user, label="expired one")
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    revoked, _ = token_create(user=user, label="revoked one")
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    body = client.get(reverse("tokens:list")).content.decode()
    for token, state in ((active, "active"), (expired, "expired"), (revoked, "revoked")):
        row = re.search(rf'<tr id="token-{token.pk}">(.*?)</tr>', body, re.S).group(1)
        assert f'class="token-state-{state}">{state}<' in row
    active_row = re.search(rf'<tr id="token-{active.pk}">(.*?)</tr>', body, re.S).group(1)
    assert "ago" in active_row  # last used
    assert active.expires_at.strftime("%Y-%m-%d") in active_row
    assert reverse("tokens:revoke", args=[revoked.pk]) not in body  # nothing left to revoke


def test_page_shows_the_raw_token_once_and_never_again(client, user):
    client.force_login(user)
    response = create(client, label="laptop scripts")
    assert response.status_code == 200
    body = response.content.decode()
    raws = set(RAW_PATTERN.findall(body))
    assert len(raws) == 1
    raw = raws.pop()
    assert "will not be shown again" in body
    assert 'data-copy-target="#new-token-value"' in body and f'id="new-token-value">{raw}<' in body
    assert "no-store" in response["Cache-Control"]
    token = token_authenticate(raw=raw)
    assert token is not None and token.user == user and token.label == "laptop scripts"

    again = client.get(reverse("tokens:list")).content.decode()
    assert raw not in again and not RAW_PATTERN.search(again)
    assert token.prefix in again


def test_create_with_htmx_returns_the_panel_with_the_new_token(client, user):
    client.force_login(user)
    response = client.post(
        reverse("tokens:create"), {"label": "ci", "expires": "never"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="token-panel"') and "<html" not in body
    assert len(RAW_PATTERN.findall(body)) == 1
    assert ApiToken.objects.get(user=user).expires_at is None


@pytest.mark.parametrize(("choice", "days"), [("7", 7), ("30", 30), ("90", 90)])
def test_create_sets_the_chosen_expiry(client, user, choice, days):
    client.force_login(user)
    create(client, expires=choice)
    expected = timezone.now() + timedelta(days=days)
    assert abs(ApiToken.objects.get(user=user).expires_at - expected) < timedelta(minutes=1)


def test_create_with_a_date_works_through_that_day(client, user):
    client.force_login(user)
    day = timezone.localdate() + timedelta(days=3)
    create(client, expires="date", expires_on=day.isoformat())
    expires_at = timezone.localtime(ApiToken.objects.get(user=user).expires_at)
    assert expires_at.date() == day and (expires_at.hour, expires_at.minute) == (23, 59)


def test_create_refuses_bad_input_and_creates_nothing(client, user):
    client.force_login(user)
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    cases = [
        ({"label": "   "}, "This field is required"),
        ({"label": "x" * 101}, "at most 100 characters"),
        ({"expires": "365"}, "Select a valid choice"),
        ({"expires": "date", "expires_on": yesterday}, "in the past"),
        ({"expires": "date", "expires_on": ""}, "Pick the date"),
    ]
    for data, message in cases:
        response = create(client, **data)
        assert response.status_code == 400, data
        assert message in response.content.decode(), data
        assert not RAW_PATTERN.search(response.content.decode())
    assert not ApiToken.objects.exists()


def test_form_tidies_the_label_and_accepts_today():
    form = TokenCreateForm({"label": "  my   laptop ", "expires": "date", "expires_on": timezone.localdate()})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["label"] == "my laptop"
    assert form.expires_at() > timezone.now()


def test_form_ignores_the_date_unless_asked_for():
    yesterday = timezone.localdate() - timedelta(days=1)
    form = TokenCreateForm({"label": "x", "expires": "never", "expires_on": ""})
    assert form.is_valid() and form.expires_at() is None
    form = TokenCreateForm({"label": "x", "expires": "never", "expires_on": yesterday})
    assert not form.is_valid()  # a past date is refused wherever it appears


def test_revoke_my_token(client, user, mine):
    client.force_login(user)
    _, raw = token_create(user=user, label="to revoke")
    token = ApiToken.objects.get(label="to revoke")
    response = client.post(reverse("tokens:revoke", args=[token.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("tokens:list")
    token.refresh_from_db()
    assert token.state == "revoked" and token_authenticate(raw=raw) is None
    mine.refresh_from_db()
    assert mine.state == "active"


def test_revoke_with_htmx_returns_the_updated_list(client, user, mine):
    client.force_login(user)
    response = client.post(reverse("tokens:revoke", args=[mine.pk]), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="token-list"') and "<html" not in body
    assert 'class="token-state-revoked">revoked<' in body


def test_revoking_another_users_token_is_404(client, user, theirs):
    client.force_login(user)
    response = client.post(reverse("tokens:revoke", args=[theirs.pk]))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_revoke_needs_a_post(client, user, mine):
    client.force_login(user)
    assert client.get(reverse("tokens:revoke", args=[mine.pk])).status_code == 405
    mine.refresh_from_db()
    assert mine.revoked_at is None
