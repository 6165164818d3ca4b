"""Creating, checking and revoking tokens: digest-only storage, shape check, revoked/expired refusal, ownership."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from playground.tokens import services
from playground.tokens.hashing import PREFIX, RAW_LENGTH, looks_like_token
from playground.tokens.models import ApiToken
from playground.tokens.selectors import token_list
from playground.tokens.services import token_authenticate, token_create, token_revoke

pytestmark = pytest.mark.django_db


def test_raw_token_is_prefixed_and_of_fixed_length(user):
    _, raw = token_create(user=user, label="ci")
    assert raw.startswith(PREFIX) and len(raw) == RAW_LENGTH
    assert looks_like_token(raw)


def test_each_token_is_different(user):
    raws = {token_create(user=user, label=f"t{i}")[1] for i in range(20)}
    assert len(raws) == 20


def test_token_is_stored_only_as_its_digest(user):
    token, raw = token_create(user=user, label="laptop")
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert row["digest"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in [str(value) for value in row.values()]
    assert row["prefix"] == raw[:10] and len(row["prefix"]) < len(raw) // 3  # enough to tell apart, useless to use


def test_valid_token_authenticates_as_its_owner(user):
    token, raw = token_create(user=user, label="laptop")
    found = token_authenticate(raw=raw)
    assert found == token and found.user == user


def test_first_use_records_last_used_at(user):
    token, raw = token_create(user=user, label="laptop")
    assert token.last_used_at is None
    before = timezone.now()
    token_authenticate(raw=raw)
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at >= before


def test_last_used_at_is_written_at_most_once_a_minute(user):
    token, raw = token_create(user=user, label="laptop")
    token_authenticate(raw=raw)
    token.refresh_from_db()
    first = token.last_used_at
    token_authenticate(raw=raw)
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    token_authenticate(raw=raw)
    token.refresh_from_db()
    assert token.last_used_at > first - timedelta(minutes=2)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "gp_",
        "gp_short",
        "xx_" + "a" * 43,  # right length, wrong prefix
        "gp_" + "a" * 44,  # one character too many
        "Bearer gp_" + "a" * 43,
    ],
)
def test_malformed_token_is_refused_before_hashing_or_querying(user, raw, monkeypatch, django_assert_num_queries):
    def digest_must_not_run(value: str) -> str:
        raise AssertionError("hashed a value of the wrong shape")

    monkeypatch.setattr(services, "token_digest", digest_must_not_run)
    with django_assert_num_queries(0):
        assert token_authenticate(raw=raw) is None


def test_unknown_token_of_the_right_shape_is_rejected(user):
    token_create(user=user, label="laptop")
    assert token_authenticate(raw=PREFIX + "A" * 43) is None


def test_revoked_token_is_rejected(user):
    token, raw = token_create(user=user, label="laptop")
    assert token_authenticate(raw=raw) is not None
    token_revoke(user=user, token_id=token.pk)
    assert token_authenticate(raw=raw) is None
    token.refresh_from_db()
    assert token.state == "revoked"


def test_expired_token_is_rejected(user):
    token, raw = token_create(user=user, label="laptop", expires_at=timezone.now() + timedelta(days=1))
    assert token_authenticate(raw=raw) is not None
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert token_authenticate(raw=raw) is None
    token.refresh_from_db()
    assert token.state == "expired"


def test_token_without_expiry_stays_active(user):
    token, raw = token_create(user=user, label="forever", expires_at=None)
    assert token.state == "active" and token.expires_at is None
    assert token_authenticate(raw=raw) == token


def test_token_of_an_inactive_user_is_rejected(user):
    _, raw = token_create(user=user, label="laptop")
    user.is_active = False
    user.save()
    assert token_authenticate(raw=raw) is None


def test_revoking_another_users_token_is_404_and_leaves_it_working(user, other_user):
    theirs, raw = token_create(user=other_user, label="their token")
    with pytest.raises(Http404):
        token_revoke(user=user, token_id=theirs.pk)
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert token_authenticate(raw=raw) == theirs


def test_revoking_an_unknown_token_is_404(user):
    with pytest.raises(Http404):
        token_revoke(user=user, token_id=999_999)


def test_revoking_twice_keeps_the_first_revocation_time(user):
    token, _ = token_create(user=user, label="laptop")
    first = token_revoke(user=user, token_id=token.pk).revoked_at
    assert token_revoke(user=user, token_id=token.pk).revoked_at == first


def test_token_list_holds_only_the_projects_tokens_newest_first(user, other_user):
    older, _ = token_create(user=user, label="older")
    newer, _ = token_create(user=user, label="newer")
    token_create(user=other_user, label="theirs")
    assert list(token_list(project=user.personal_project)) == [newer, older]
