"""Sign up, log in, log out, change password; CSRF is enforced on every form."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_sign_up_logs_the_new_user_in(client, django_user_model):
    response = client.post(
        reverse("signup"),
        {"username": "newbie", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
    )
    assert response.status_code == 302
    assert django_user_model.objects.filter(username="newbie").exists()
    assert "newbie" in client.get(reverse("catalog")).content.decode()


def test_sign_up_with_mismatched_passwords_explains(client):
    response = client.post(reverse("signup"), {"username": "x", "password1": "a-long-pass-9", "password2": "other-9"})
    assert response.status_code == 400
    assert "didn’t match" in response.content.decode() or "didn't match" in response.content.decode()


def test_log_in_and_log_out(client, user):
    response = client.post(reverse("login"), {"username": "owner", "password": "pw-owner-123!"})
    assert response.status_code == 302
    assert "owner" in client.get(reverse("catalog")).content.decode()
    client.post(reverse("logout"))
    assert "Log in" in client.get(reverse("catalog")).content.decode()


def test_change_password(client, user):
    client.force_login(user)
    response = client.post(
        reverse("password_change"),
        {"old_password": "pw-owner-123!", "new_password1": "brand-new-pass-77", "new_password2": "brand-new-pass-77"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("brand-new-pass-77")


def test_forms_require_csrf(user):
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(reverse("login"), {"username": "owner", "password": "pw-owner-123!"}).status_code == 403
    assert strict.post(reverse("signup"), {"username": "a"}).status_code == 403
