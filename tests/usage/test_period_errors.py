"""A custom period the usage page refuses (inverted, longer than 366 days, not a date) says so on a full load
and after an htmx swap of the report alike, and says which period is shown instead."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2025-03-10", "end": "2025-03-01"}, "The start date must not be after the end date."),
        ({"start": "2023-01-01", "end": "2025-01-01"}, "Pick at most 366 days."),
        ({"start": "not-a-date"}, "Start: Enter a valid date."),
    ],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["full-page", "htmx-swap"])
def test_a_refused_period_says_so(client, user, query, message, htmx):
    client.force_login(user)
    response = client.get(reverse("usage:usage"), query, **(HTMX if htmx else {}))
    body = response.content.decode()
    assert response.status_code == 200  # htmx swaps 2xx answers only
    if htmx:
        assert body.lstrip().startswith('<div id="report"')  # the part htmx swaps in
    error = re.search(r'<p class="error" role="alert" data-period-error>(.*?)</p>', body, re.S)
    assert error, "the refusal is missing"
    assert message in error[1] and "Showing the last 30 days instead." in error[1]
    assert body.count("data-period-error") == 1  # said once, inside the swapped part


def test_an_accepted_period_shows_no_error(client, user):
    client.force_login(user)
    body = client.get(reverse("usage:usage"), {"start": "2025-03-01", "end": "2025-03-10"}, **HTMX).content.decode()
    assert "data-period-error" not in body and "2025-03-01 to 2025-03-10" in body
