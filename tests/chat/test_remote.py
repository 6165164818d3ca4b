"""The Playground's Stop on a remote model closes the upstream's connection, so the upstream stops generating."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from inference import EnginePool
from tests.chat.test_consumers import connect, frames_until, generate
from tests.upstream import FakeUpstream, fake_upstream, installed_pool, remote_spec

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with fake_upstream() as up:
        up.delay, up.pieces = 0.05, 400  # a reply of 20 s unless stopped
        yield up


@pytest.fixture
def remote_pool(upstream: FakeUpstream) -> Iterator[EnginePool]:
    with installed_pool(remote_spec("remote-chat", "text-to-text", upstream)) as pool:
        yield pool


async def test_stop_in_the_playground_closes_the_upstream_connection(cookie, remote_pool, upstream):
    communicator = await connect(cookie)
    await communicator.send_json_to(generate("tell me a story", model="remote-chat"))
    await frames_until(communicator, "token")
    await communicator.send_json_to({"type": "stop"})
    done = (await frames_until(communicator, "done"))[-1]
    assert done["finish_reason"] == "cancelled" and done["usage"]["completion_tokens"] < 100
    for _ in range(100):  # the upstream notices at its next write
        if upstream.gone:
            break
        await asyncio.sleep(0.05)
    assert upstream.gone == 1 and upstream.finished == 0
    await communicator.disconnect()
