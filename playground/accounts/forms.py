from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from playground.tokens.throttle import auth_failure_record, ban_message, ban_remaining, request_address


class SignupForm(UserCreationForm):
    """Username and password; nothing else is needed to try models."""


def _clean_throttled(form: AuthenticationForm, clean: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The API's failed-authentication ban on a login form: a banned address is refused before its password is
    checked, and a wrong username or password counts as a failure (one counter per address for every surface).
    Empty fields never reach authenticate() and do not count; nor does a right password that the form refuses
    for another reason (an admin login by a user who is not staff)."""
    if form.request is None:  # only a form bound to a request knows who is asking
        return clean()
    address = request_address(form.request)
    if banned_for := ban_remaining(address=address):
        form.banned_for = banned_for  # type: ignore[attr-defined]  # the view answers 403 with Retry-After
        raise ValidationError(ban_message(address=address, seconds=banned_for), code="banned")
    try:
        return clean()
    except ValidationError as exc:
        if exc.code == "invalid_login" and form.get_user() is None:
            auth_failure_record(address=address)
        raise


class LoginForm(AuthenticationForm):
    def clean(self) -> dict[str, Any]:
        return _clean_throttled(self, super().clean)


class AdminLoginForm(AdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        return _clean_throttled(self, super().clean)
