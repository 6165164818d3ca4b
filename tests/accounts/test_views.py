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


def test_password_pages_are_the_sites_own_not_the_admins(client, user):
    client.force_login(user)
    for name in ("password_change", "password_change_done"):
        response = client.get(reverse(name))
        body = response.content.decode()
        assert response.status_code == 200
        assert "accounts/" in response.templates[0].name and response.templates[1].name == "base.html"
        assert 'class="brand">GenAI Playground' in body
        assert "Django administration" not in body and "/admin/" not in body  # no admin Home for a non-staff user
    response = client.post(
        reverse("password_change"),
        {"old_password": "pw-owner-123!", "new_password1": "brand-new-pass-77", "new_password2": "brand-new-pass-77"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("password_change_done")
    assert "Your password was changed." in response.content.decode()


def test_a_wrong_old_password_is_explained_in_the_sites_layout(client, user):
    client.force_login(user)
    response = client.post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": "brand-new-pass-77", "new_password2": "brand-new-pass-77"},
    )
    body = response.content.decode()
    assert response.status_code == 200 and "old password was entered incorrectly" in body
    assert "Django administration" not in body


def test_login_and_logged_out_pages_use_the_site_layout(client, user):
    body = client.get(reverse("login")).content.decode()
    assert 'class="brand">GenAI Playground' in body and "Django administration" not in body
    client.force_login(user)
    response = client.post(reverse("logout"))
    assert response.status_code == 302  # LOGOUT_REDIRECT_URL; the logged-out page is the site's own if shown
    from django.template import loader

    assert "django/contrib/admin" not in str(loader.get_template("accounts/logged_out.html").origin.name)


def test_password_reset_is_not_offered_without_mail(client):
    assert client.get("/accounts/password_reset/").status_code == 404
