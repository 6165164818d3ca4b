"""Deployed endpoints: the official openai SDK with base_url set to the endpoint (in-process over ASGI, fake
engines), streamed and not, ?project_id=, pause and delete, another project's token, the endpoint's defaults and
system prompt reaching the engine, /v1/models listing, and the pages (owner, member, outsider)."""

from __future__ import annotations

import httpx2
import openai
import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.urls import reverse
from openai import AsyncOpenAI

from playground.asgi import application
from playground.endpoints.models import Endpoint
from playground.endpoints.services import endpoint_deploy
from playground.projects.services import member_add, project_create
from playground.tokens.services import token_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    cache.clear()


@pytest.fixture
def team(user, django_user_model):  # noqa: ANN001, ANN201
    django_user_model.objects.create_user(username="member", password="pw-member-123!")
    project = project_create(user=user, name="Team")
    member_add(user=user, project_id=project.pk, username="member", role="member")
    return project


@pytest.fixture
def endpoint(user, team, fake_pool) -> Endpoint:  # noqa: ANN001
    return endpoint_deploy(
        user=user,
        project=team,
        name="support bot",
        model_id="fake-chat",
        params={"temperature": 0.25, "max_tokens": 7},
        system_prompt="You are terse.",
    )


@pytest.fixture
def team_token(user, team) -> str:  # noqa: ANN001
    return token_create(user=user, label="team", project=team)[1]


def sdk(base_url: str, token: str) -> AsyncOpenAI:
    transport = httpx2.ASGITransport(app=application)
    http = httpx2.AsyncClient(transport=transport, base_url="http://testserver")
    return AsyncOpenAI(base_url=base_url, api_key=token, max_retries=0, http_client=http)


def base(endpoint: Endpoint) -> str:
    return f"http://testserver{endpoint.path}"


async def test_the_sdk_chats_with_the_endpoint_which_fixes_model_defaults_and_system_prompt(
    endpoint, team_token, fake_pool
):
    client = sdk(base(endpoint), team_token)
    reply = await client.chat.completions.create(
        model="anything", messages=[{"role": "system", "content": "ignored"}, {"role": "user", "content": "Hi"}]
    )
    assert reply.model == "fake-chat" and reply.choices[0].message.content
    call = fake_pool.workers["fake-chat"].engine.calls[-1]
    assert [(m.role, m.content) for m in call["messages"]] == [("system", "You are terse."), ("user", "Hi")]
    assert call["params"].temperature == 0.25 and call["params"].max_tokens == 7
    # the request's own values win over the endpoint's defaults
    await client.chat.completions.create(model="x", messages=[{"role": "user", "content": "Hi"}], temperature=1.5)
    assert fake_pool.workers["fake-chat"].engine.calls[-1]["params"].temperature == 1.5


async def test_the_sdk_streams_from_the_endpoint(endpoint, team_token, fake_pool):
    client = sdk(base(endpoint), team_token)
    stream = await client.chat.completions.create(model="x", messages=[{"role": "user", "content": "Hi"}], stream=True)
    parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert "".join(parts)


async def test_project_id_in_the_query_is_accepted_and_another_is_a_404(endpoint, team_token, fake_pool):
    client = sdk(base(endpoint), team_token)
    body = {"model": "x", "messages": [{"role": "user", "content": "Hi"}]}
    ok = await client.chat.completions.create(**body, extra_query={"project_id": endpoint.project_id})
    assert ok.choices
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(**body, extra_query={"project_id": endpoint.project_id + 1000})


async def test_a_paused_endpoint_answers_503_and_a_deleted_one_404(user, endpoint, team_token, fake_pool):
    client = sdk(base(endpoint), team_token)
    body = {"model": "x", "messages": [{"role": "user", "content": "Hi"}]}
    await sync_to_async(Endpoint.objects.filter(pk=endpoint.pk).update)(paused=True)
    with pytest.raises(openai.InternalServerError) as paused:
        await client.chat.completions.create(**body)
    assert paused.value.status_code == 503 and paused.value.code == "endpoint_paused"
    await sync_to_async(Endpoint.objects.filter(pk=endpoint.pk).delete)()
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(**body)


async def test_another_projects_token_gets_404(user, endpoint, fake_pool):
    personal = (await sync_to_async(token_create)(user=user, label="personal"))[1]
    client = sdk(base(endpoint), personal)
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="x", messages=[{"role": "user", "content": "Hi"}])


async def test_a_route_the_models_task_lacks_is_a_404(endpoint, team_token, fake_pool):
    client = sdk(base(endpoint), team_token)
    with pytest.raises(openai.NotFoundError):
        await client.embeddings.create(model="x", input="hi")


async def test_the_endpoints_own_rate_limit(endpoint, team_token, fake_pool):
    await sync_to_async(Endpoint.objects.filter(pk=endpoint.pk).update)(requests_per_minute=1)
    client = sdk(base(endpoint), team_token)
    body = {"model": "x", "messages": [{"role": "user", "content": "Hi"}]}
    await client.chat.completions.create(**body)
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(**body)
    assert int(limited.value.response.headers["Retry-After"]) >= 1


async def test_v1_models_lists_the_projects_endpoints_for_its_tokens_only(user, endpoint, team_token, fake_pool):
    listed = {m.id for m in (await sdk("http://testserver/v1", team_token).models.list()).data}
    assert f"is-{endpoint.pk}" in listed and "fake-chat" in listed
    personal = (await sync_to_async(token_create)(user=user, label="personal"))[1]
    listed = {m.id for m in (await sdk("http://testserver/v1", personal).models.list()).data}
    assert f"is-{endpoint.pk}" not in listed
    assert [m.id for m in (await sdk(base(endpoint), team_token).models.list()).data] == ["fake-chat"]


@pytest.mark.parametrize("who", ["owner", "member"])
def test_members_see_the_endpoint_page_with_url_code_and_usage(client, django_user_model, endpoint, who):
    client.force_login(django_user_model.objects.get(username=who))
    page = client.get(reverse("endpoints:detail", args=[endpoint.pk])).content.decode()
    assert endpoint.path in page and "base_url=" in page and "Usage" in page and "running" in page
    assert ("Pause</button>" in page) == (who == "owner")


def test_a_non_member_gets_404_on_every_endpoint_route(client, other_user, endpoint):
    client.force_login(other_user)
    assert client.get(reverse("endpoints:detail", args=[endpoint.pk])).status_code == 404
    assert client.post(reverse("endpoints:pause", args=[endpoint.pk])).status_code == 404
    assert client.post(reverse("endpoints:delete", args=[endpoint.pk])).status_code == 404


def test_only_owners_deploy_pause_and_delete(client, django_user_model, user, team, endpoint, fake_pool):
    member = django_user_model.objects.get(username="member")
    client.force_login(member)
    assert client.post(reverse("endpoints:pause", args=[endpoint.pk])).status_code == 403
    client.post(reverse("projects:switch"), {"project": team.pk})
    assert client.post(reverse("endpoints:list"), {"name": "x", "model": "fake-chat"}).status_code == 403
    client.force_login(user)
    client.post(reverse("projects:switch"), {"project": team.pk})
    response = client.post(reverse("endpoints:list"), {"name": "second", "model": "fake-chat", "temperature": "0.5"})
    second = Endpoint.objects.get(name="second")
    assert response.url == reverse("endpoints:detail", args=[second.pk]) and second.params == {"temperature": 0.5}
    client.post(reverse("endpoints:pause", args=[second.pk]), {"paused": "1"})
    assert Endpoint.objects.get(pk=second.pk).paused
    client.post(reverse("endpoints:delete", args=[second.pk]))
    assert not Endpoint.objects.filter(pk=second.pk).exists()


@pytest.mark.metering
async def test_an_endpoint_call_is_billed_to_its_project_and_shown_in_its_usage(
    async_client, user, team, endpoint, team_token, fake_pool
):
    from playground.usage.models import UsageRecord

    client = sdk(base(endpoint), team_token)
    await client.chat.completions.create(model="x", messages=[{"role": "user", "content": "Hi"}])
    record = await sync_to_async(UsageRecord.objects.get)()
    assert record.project_id == team.pk and record.endpoint.startswith(endpoint.path)
    await sync_to_async(async_client.force_login)(user)
    page = (await async_client.get(reverse("endpoints:detail", args=[endpoint.pk]))).content.decode()
    assert "1 requests" in page
