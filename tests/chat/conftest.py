"""Fixtures of the chat tests: a signed-in session for the Playground socket."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture
def cookie(user) -> bytes:  # noqa: ANN001
    """The session cookie of `user`, for a WebsocketCommunicator's headers."""
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()
