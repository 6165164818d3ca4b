"""`manage.py create_api_token`: the token alone on stdout, once; errors for an unknown user or bad input."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from playground.tokens.hashing import looks_like_token
from playground.tokens.models import ApiToken
from playground.tokens.services import token_authenticate

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_only_the_token_and_it_authenticates(user):
    out, err = run("--user", "owner", "--label", "ci runner")
    assert out.endswith("\n") and out.count("\n") == 1
    raw = out.strip()
    assert looks_like_token(raw)
    token = token_authenticate(raw=raw)
    assert token is not None and token.user == user and token.label == "ci runner"
    assert token.expires_at is None
    assert raw not in err and token.prefix in err  # the note on stderr names it without repeating it


def test_token_is_not_stored_raw(user):
    out, _ = run("--user", "owner", "--label", "ci")
    row = ApiToken.objects.values().get()
    assert out.strip() not in [str(value) for value in row.values()]


def test_expires_days_sets_the_expiry(user):
    out, _ = run("--user", "owner", "--label", "ci", "--expires-days", "7")
    token = token_authenticate(raw=out.strip())
    assert abs(token.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)


def test_unknown_user_is_an_error_and_creates_nothing(user):
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run("--user", "nobody", "--label", "ci")
    assert not ApiToken.objects.exists()


def test_inactive_user_is_an_error(user):
    user.is_active = False
    user.save()
    with pytest.raises(CommandError, match="inactive"):
        run("--user", "owner", "--label", "ci")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "  "], "blank"),
        (["--label", "x" * 101], "longer than 100"),
        (["--label", "ci", "--expires-days", "0"], "between 1 and"),
        (["--label", "ci", "--expires-days", "-3"], "between 1 and"),
    ],
)
def test_bad_arguments_are_errors(user, args, message):
    with pytest.raises(CommandError, match=message):
        run("--user", "owner", *args)
    assert not ApiToken.objects.exists()


def test_user_and_label_are_required(user):
    with pytest.raises(CommandError):
        call_command("create_api_token", "--label", "ci", stdout=StringIO(), stderr=StringIO())
