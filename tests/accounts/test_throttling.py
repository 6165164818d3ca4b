"""The failed-authentication ban on the login pages (the site's and the admin's), and the signup setting and limit.

One counter per client address for every surface: a wrong password here and a wrong API token there add up.
Empty fields, or a right password that is refused for another reason, do not count.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from playground.tokens.services import token_create
from playground.tokens.throttle import auth_failure_record, ban_remaining

pytestmark = pytest.mark.django_db

CLIENT = "198.51.100.20"
RIGHT = {"username": "owner", "password": "pw-owner-123!"}
WRONG = {"username": "owner", "password": "not-my-password"}


def log_in(data: dict[str, str], *, peer: str = CLIENT, url: str = "/accounts/login/") -> tuple[Client, object]:
    client = Client()
    return client, client.post(url, data, REMOTE_ADDR=peer)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_wrong_passwords_ban_the_address_even_for_the_right_one(user, clock):
    for _ in range(5):
        client, response = log_in(WRONG)
        assert response.status_code == 200 and not logged_in(client)
    client, response = log_in(RIGHT)
    assert response.status_code == 403 and response["Retry-After"] == "300"
    assert "too many failed authentication attempts from 198.51.100.20" in response.content.decode()
    assert not logged_in(client)
    client, response = log_in(RIGHT, peer="198.51.100.21")  # another address is not banned
    assert response.status_code == 302 and logged_in(client)
    clock.advance(300)
    client, response = log_in(RIGHT)
    assert response.status_code == 302 and logged_in(client)


def test_a_banned_address_still_sees_the_login_page(user, clock):
    for _ in range(5):
        auth_failure_record(address=CLIENT)
    assert Client().get("/accounts/login/", REMOTE_ADDR=CLIENT).status_code == 200


def test_empty_fields_do_not_count(user, clock):
    for data in ({"username": "owner", "password": ""}, {"username": "", "password": "x"}, {}) * 4:
        log_in(data)
    assert ban_remaining(address=CLIENT) == 0
    client, response = log_in(RIGHT)
    assert response.status_code == 302 and logged_in(client)


def test_login_failures_and_api_token_failures_share_one_counter(user, clock):
    _, raw = token_create(user=user, label="laptop")
    for _ in range(3):
        log_in(WRONG)
    for _ in range(2):
        Client().get("/v1/models", headers={"Authorization": "Bearer gp_" + "x" * 43}, REMOTE_ADDR=CLIENT)
    response = Client().get("/v1/models", headers={"Authorization": f"Bearer {raw}"}, REMOTE_ADDR=CLIENT)
    assert response.status_code == 403 and response.json()["error"]["code"] == "banned"


def test_ipv6_logins_count_by_slash_64(user, clock):
    for host in range(1, 6):
        log_in(WRONG, peer=f"2001:db8:5:6::{host}")
    _, response = log_in(RIGHT, peer="2001:db8:5:6::99")
    assert response.status_code == 403 and "2001:db8:5:6::/64" in response.content.decode()


def test_the_admin_login_counts_failures_and_honours_the_ban(django_user_model, clock):
    django_user_model.objects.create_user("ops", password="pw-ops-123!", is_staff=True)
    admin_login = reverse("admin:login")
    for _ in range(5):
        client, response = log_in({"username": "ops", "password": "wrong"}, url=admin_login)
        assert response.status_code == 200 and not logged_in(client)
    client, response = log_in({"username": "ops", "password": "pw-ops-123!"}, url=admin_login)
    assert not logged_in(client)
    assert "too many failed authentication attempts" in response.content.decode()


def test_a_right_password_refused_by_the_admin_does_not_count(user, clock):
    for _ in range(6):  # not staff: the admin refuses, but the password was right
        client, _ = log_in(RIGHT, url=reverse("admin:login"))
        assert not logged_in(client)
    assert ban_remaining(address=CLIENT) == 0


# --- Signup -----------------------------------------------------------------------------------------------------------


def sign_up(name: str, *, peer: str = CLIENT):
    password = "a-long-pass-phrase-9"
    return Client().post(
        reverse("signup"), {"username": name, "password1": password, "password2": password}, REMOTE_ADDR=peer
    )


def test_signup_can_be_closed(client, settings, django_user_model):
    settings.PLAYGROUND_SIGNUP = "closed"
    page = client.get(reverse("signup"))
    assert page.status_code == 403 and "Sign-up is closed" in page.content.decode()
    assert sign_up("newbie").status_code == 403
    assert not django_user_model.objects.filter(username="newbie").exists()
    assert reverse("signup") not in client.get(reverse("login")).content.decode()


def test_signup_is_open_by_default(client, settings):
    assert settings.PLAYGROUND_SIGNUP == "open"
    assert client.get(reverse("signup")).status_code == 200
    assert reverse("signup") in client.get(reverse("login")).content.decode()


def test_signups_are_limited_per_address_and_hour(settings, clock, django_user_model):
    settings.PLAYGROUND_SIGNUP_PER_HOUR = 2
    assert sign_up("first").status_code == 302
    clock.advance(600)
    assert sign_up("second").status_code == 302
    refused = sign_up("third")
    assert refused.status_code == 429 and refused["Retry-After"] == "3000"  # when the first falls out of the hour
    assert "try again in 50 minutes" in refused.content.decode()
    assert not django_user_model.objects.filter(username="third").exists()
    assert sign_up("elsewhere", peer="198.51.100.21").status_code == 302
    clock.advance(3000)
    assert sign_up("third").status_code == 302


def test_refused_signup_forms_do_not_use_up_the_limit(settings, clock):
    settings.PLAYGROUND_SIGNUP_PER_HOUR = 1
    bad = {"username": "x", "password1": "a-long-pass-9", "password2": "other-9"}
    for _ in range(3):
        assert Client().post(reverse("signup"), bad, REMOTE_ADDR=CLIENT).status_code == 400
    assert sign_up("newbie").status_code == 302


def test_no_signup_limit_when_set_to_zero(settings, clock):
    settings.PLAYGROUND_SIGNUP_PER_HOUR = 0
    for n in range(12):
        assert sign_up(f"user{n}").status_code == 302
