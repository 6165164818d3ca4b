"""Remote models through the site (/v1, the ledger, /health, /metrics), and an engine node (PLAYGROUND_ROLE=engine).

The upstreams are scriptable servers on loopback (tests/upstream.py); tests/deploy/test_fleet.py runs real ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from inference import EnginePool
from playground import engines
from tests.upstream import WORDS, FakeUpstream, fake_upstream, installed_pool, remote_spec
from tests.usage.test_ledger import wait_for_records

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.metering]
CHAT = {"model": "remote-chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with fake_upstream() as a, fake_upstream() as b:
        yield a, b


@pytest.fixture
def remote_pool(upstreams: tuple[FakeUpstream, FakeUpstream]) -> Iterator[EnginePool]:
    a, b = upstreams
    remote = (remote_spec("remote-chat", "text-to-text", a, b, cap=2), remote_spec("remote-embed", "embeddings", a))
    with installed_pool(*remote) as pool:
        yield pool


async def post(client, path: str, body: dict, auth: dict):  # noqa: ANN001, ANN201
    return await client.post(path, data=json.dumps(body), content_type="application/json", **auth)


async def test_a_remote_chat_answers_with_the_upstreams_usage_on_the_ledger(async_client, auth, remote_pool, upstreams):
    response = await post(async_client, "/v1/chat/completions", CHAT, auth)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "".join(WORDS)
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
    (record,) = await sync_to_async(wait_for_records)(1)
    assert (record.model_id, record.prompt_tokens, record.completion_tokens) == ("remote-chat", 11, 5)
    assert record.outcome == "finished" and not record.estimated
    assert float(record.cost) == pytest.approx((11 * 1.0 + 5 * 2.0) / 1e6)


async def test_an_upstream_without_usage_is_recorded_as_estimated(async_client, auth, remote_pool, upstreams):
    for upstream in upstreams:
        upstream.mode = "no_usage"
    response = await post(async_client, "/v1/chat/completions", {**CHAT, "stream": True}, auth)
    assert response.status_code == 200
    b"".join([part async for part in response.streaming_content])
    (record,) = await sync_to_async(wait_for_records)(1)
    assert record.estimated and record.completion_tokens == 5


async def test_a_stream_that_breaks_mid_reply_ends_with_an_error_event(async_client, auth, remote_pool, upstreams):
    for upstream in upstreams:
        upstream.mode = "break"
    response = await post(async_client, "/v1/chat/completions", {**CHAT, "stream": True}, auth)
    assert response.status_code == 200
    raw = b"".join([part async for part in response.streaming_content]).decode()
    events = [block[len("data: ") :] for block in raw.split("\n\n") if block]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "upstream_error" and "broke off" in error["message"]
    text = "".join(
        json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-2] if json.loads(e)["choices"]
    )
    assert text == "".join(WORDS[:2])
    (record,) = await sync_to_async(wait_for_records)(1)
    assert record.outcome == "error"
    assert sum(len(u.requests) for u in upstreams) == 1  # no second upstream once the reply had begun


async def test_every_upstream_down_is_a_503_and_no_ledger_row(async_client, auth, remote_pool, upstreams):
    for upstream in upstreams:
        upstream.mode = "down"
    response = await post(async_client, "/v1/chat/completions", CHAT, auth)
    assert response.status_code == 503 and response["Retry-After"]
    error = response.json()["error"]
    assert error["code"] == "upstream_unavailable" and error["type"] == "service_unavailable_error"
    # nothing was generated, so nothing is charged (as for a full queue); the next request that works is recorded
    for upstream in upstreams:
        upstream.mode = "ok"
    remote_pool.routers["remote-chat"].check(remote_pool.routers["remote-chat"].upstreams[0])
    assert (await post(async_client, "/v1/chat/completions", CHAT, auth)).status_code == 200
    (record,) = await sync_to_async(wait_for_records)(1)
    assert record.outcome == "finished"


async def test_remote_tools_are_refused_with_a_400(async_client, auth, remote_pool):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    response = await post(
        async_client, "/v1/chat/completions", {**CHAT, "tools": tools, "tool_choice": "required"}, auth
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_parameter"


async def test_remote_embeddings(async_client, auth, remote_pool):
    response = await post(async_client, "/v1/embeddings", {"model": "remote-embed", "input": ["a", "b"]}, auth)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["data"][0]["embedding"] == pytest.approx([0.6, 0.8, 0.0]) and body["usage"]["prompt_tokens"] == 14


async def test_health_and_metrics_show_each_upstream(async_client, auth, remote_pool, upstreams, settings):
    assert (await post(async_client, "/v1/chat/completions", CHAT, auth)).status_code == 200
    health = (await async_client.get("/health")).json()
    (model,) = [m for m in health["models"] if m["id"] == "remote-chat"]
    assert model["device"] == "remote" and model["state"] == "loaded"
    assert [u["url"] for u in model["upstreams"]] == [u.url for u in upstreams]
    assert {u["state"] for u in model["upstreams"]} <= {"healthy", "unknown"}
    assert sum(u["requests"] for u in model["upstreams"]) == 1
    settings.PLAYGROUND_METRICS_TOKEN = "metrics-token-123"
    metrics = (await async_client.get("/metrics", headers={"Authorization": "Bearer metrics-token-123"})).content
    line = f'playground_upstream_in_flight{{model="remote-chat",upstream="{upstreams[0].url}"}} 0'
    assert line.encode() in metrics
    assert b"playground_upstream_latency_seconds{" in metrics


def test_the_card_lists_the_upstreams(client, user, remote_pool, upstreams):
    client.force_login(user)
    page = client.get("/models/remote-chat/").content.decode()
    assert upstreams[0].url in page and upstreams[1].url in page


# --- an engine node ------------------------------------------------------------------------------------------------

CLUSTER = "cluster-token-0123456789"


@pytest.fixture
def engine_node(settings, fake_pool):  # noqa: ANN001, ANN201
    settings.PLAYGROUND_ROLE = "engine"
    settings.PLAYGROUND_CLUSTER_TOKEN = CLUSTER
    settings.ROOT_URLCONF = "playground.urls_engine"
    return fake_pool


async def test_an_engine_node_serves_the_api_to_the_cluster_token_only(async_client, engine_node, raw_token):
    cluster = {"headers": {"Authorization": f"Bearer {CLUSTER}"}}
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    ok = await post(async_client, "/v1/chat/completions", body, cluster)
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 4
    models = await async_client.get("/v1/models", **cluster)
    assert models.status_code == 200 and "fake-chat" in {m["id"] for m in models.json()["data"]}
    # a user's API token is not the cluster's
    refused = await post(
        async_client, "/v1/chat/completions", body, {"headers": {"Authorization": f"Bearer {raw_token}"}}
    )
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert (await post(async_client, "/v1/chat/completions", body, {})).status_code == 401
    (record,) = await sync_to_async(wait_for_records)(1)
    assert record.token_id is None
    assert await sync_to_async(lambda: record.user.username)() == "cluster"


async def test_an_engine_node_has_no_pages(async_client, engine_node):
    assert (await async_client.get("/health")).status_code == 200
    for page in ("/models/", "/chat/", "/accounts/login/", "/usage/"):
        response = await async_client.get(page)
        assert response.status_code == 404, page
        assert response.json()["error"]["code"] == "unknown_url"


def test_serve_models_limits_the_in_process_models(settings, tmp_path: Path) -> None:
    extra = tmp_path / "remote.toml"
    extra.write_text(
        '[[model]]\nid = "far-chat"\ntask = "text-to-text"\nengine = "openai"\n'
        'upstreams = [{ url = "http://gpu:8000/v1" }]\n'
    )
    settings.PLAYGROUND_CATALOG_FILES = [*settings.PLAYGROUND_CATALOG_FILES, extra]
    settings.PLAYGROUND_SERVE_MODELS = ["whisper-tiny.en"]
    assert [s.id for s in engines.catalog_specs()] == ["whisper-tiny.en", "far-chat"]
    settings.PLAYGROUND_SERVE_MODELS = []
    assert [s.id for s in engines.catalog_specs()] == ["far-chat"]
    settings.PLAYGROUND_SERVE_MODELS = None
    assert len(engines.catalog_specs()) == 7
