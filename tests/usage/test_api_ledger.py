"""API requests land in the ledger with their token, streamed replies included."""

from __future__ import annotations

import json

import pytest

from playground.tokens.services import token_create
from playground.usage.models import UsageRecord
from tests.usage.test_ledger import wait_for_records

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.metering]


async def test_streamed_chat_completion_is_recorded_with_its_token(async_client, fake_pool, user):
    from asgiref.sync import sync_to_async

    token, raw = await sync_to_async(token_create)(user=user, label="ci")
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": True}
    response = await async_client.post(
        "/v1/chat/completions",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 200
    events = [chunk async for chunk in response.streaming_content]
    assert events[-1].strip() == b"data: [DONE]"
    (record,) = await sync_to_async(wait_for_records)(1)
    assert record.source == "api" and record.endpoint == "/v1/chat/completions"
    assert record.token_id == token.pk and record.user_id == user.pk
    assert record.completion_tokens == 4 and record.outcome == "finished"
    assert await sync_to_async(UsageRecord.objects.count)() == 1
