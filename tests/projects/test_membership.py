"""Projects: every user's personal project, shared projects with owners and members, the current project of a
session, and membership on every page and route that takes an object id (owner, member, outsider)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from playground.bulk.models import BulkJob, Dataset, Prompt
from playground.chat.models import Conversation
from playground.projects.models import Membership, Project
from playground.projects.services import member_add, project_create
from playground.tokens.models import ApiToken
from playground.tokens.services import token_create
from playground.usage.services import Metering, usage_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(django_user_model):  # noqa: ANN001
    return django_user_model.objects.create_user(username="member", password="pw-member-123!")


@pytest.fixture
def team(user, member) -> Project:
    project = project_create(user=user, name="Team")
    member_add(user=user, project_id=project.pk, username="member", role="member")
    return project


@pytest.fixture
def objects(user, member, team) -> dict[str, Any]:
    """One object of every kind in the shared project, made by its owner (tokens) or its member."""
    token, _ = token_create(user=user, label="team token", project=team)
    dataset = Dataset.objects.create(user=member, project=team, name="Questions")
    Prompt.objects.create(dataset=dataset, position=1, source_line=2, text="Hi?")
    job = BulkJob.objects.create(
        user=member, dataset=dataset, model_id="fake-chat", total=1, last_position=1, status=BulkJob.Status.COMPLETED
    )
    conversation = Conversation.objects.create(user=member, project=team, model_id="fake-chat", title="Team chat")
    return {"token": token, "dataset": dataset, "job": job, "conversation": conversation}


def test_every_new_user_gets_a_personal_project_they_own(user):
    project = user.personal_project
    assert project.name == "Personal"
    assert Membership.objects.get(project=project, user=user).role == "owner"


def test_objects_made_without_a_project_go_to_the_personal_one(user):
    token, _ = token_create(user=user, label="mine")
    assert token.project_id == user.personal_project.pk
    assert Dataset.objects.create(user=user, name="d").project_id == user.personal_project.pk


def test_a_job_belongs_to_its_datasets_project(objects, team):
    assert objects["job"].project_id == team.pk


# Every route that takes an object id, and who may reach it: a non-member gets 404 for all of them.
ROUTES = [
    ("get", "tokens:limits", "token", {}),
    ("get", "bulk:dataset", "dataset", {}),
    ("post", "bulk:dataset_rename", "dataset", {"name": "Renamed"}),
    ("post", "bulk:dataset_delete", "dataset", {}),
    ("post", "bulk:cancel", "job", {}),
    ("post", "bulk:retry", "job", {}),
    ("post", "bulk:delete", "job", {}),
    ("get", "bulk:results", "job", {}),
    ("get", "chat:open", "conversation", {}),
    ("get", "chat:rename", "conversation", {}),
    ("post", "chat:delete", "conversation", {}),
    ("get", "chat:export_md", "conversation", {}),
    ("get", "chat:export_json", "conversation", {}),
]
OWNER_ONLY = [("post", "tokens:revoke", "token", {}), ("post", "tokens:limits", "token", {"requests_per_minute": 5})]


def _call(client, method: str, name: str, obj: Any, data: dict[str, Any]):  # noqa: ANN001, ANN202
    return getattr(client, method)(reverse(name, args=[obj.pk]), data)


@pytest.mark.parametrize(("method", "name", "kind", "data"), ROUTES + OWNER_ONLY)
def test_a_non_member_gets_404_for_every_object_of_a_project(
    client, other_user, objects, fake_pool, method, name, kind, data
):
    client.force_login(other_user)
    assert _call(client, method, name, objects[kind], data).status_code == 404


@pytest.mark.parametrize(("method", "name", "kind", "data"), ROUTES)
@pytest.mark.parametrize("who", ["user", "member"])
def test_owners_and_members_reach_every_object_of_their_project(
    client, request, objects, fake_pool, who, method, name, kind, data
):
    client.force_login(request.getfixturevalue(who))
    assert _call(client, method, name, objects[kind], data).status_code in (200, 302)


@pytest.mark.parametrize(("method", "name", "kind", "data"), OWNER_ONLY)
def test_only_owners_manage_tokens(client, user, member, objects, method, name, kind, data):
    client.force_login(member)
    assert _call(client, method, name, objects[kind], data).status_code == 403
    client.force_login(user)
    assert _call(client, method, name, objects[kind], data).status_code == 302


def test_a_member_cannot_create_a_token_in_the_project(client, member, team):
    client.force_login(member)
    client.post(reverse("projects:switch"), {"project": team.pk})
    assert client.post(reverse("tokens:create"), {"label": "x", "expires": "30"}).status_code == 403
    assert not ApiToken.objects.filter(project=team).exists()


def test_the_pages_show_the_current_project_only(client, user, member, objects, team):
    mine = Dataset.objects.create(user=member, name="Private")
    client.force_login(member)
    page = client.get(reverse("bulk:index")).content.decode()
    assert "Private" in page and "Questions" not in page
    assert client.post(reverse("projects:switch"), {"project": team.pk, "next": "/bulk/"}).url == "/bulk/"
    page = client.get(reverse("bulk:index")).content.decode()
    assert "Questions" in page and "Private" not in page
    assert "Team chat" in client.get(reverse("chat:list")).content.decode()
    assert "team token" in client.get(reverse("tokens:list")).content.decode()
    assert mine.project_id == member.personal_project.pk


def test_switching_to_a_project_one_is_not_a_member_of_is_a_404(client, other_user, team):
    client.force_login(other_user)
    assert client.post(reverse("projects:switch"), {"project": team.pk}).status_code == 404
    assert client.get(reverse("projects:detail", args=[team.pk])).status_code == 404


def test_the_header_offers_the_users_projects(client, member, team):
    client.force_login(member)
    page = client.get(reverse("tokens:list")).content.decode()
    assert f'<option value="{team.pk}"' in page and f'<option value="{member.personal_project.pk}"' in page


def test_owners_add_and_remove_members_by_username(client, user, member, other_user, team):
    client.force_login(user)
    assert (
        client.post(reverse("projects:detail", args=[team.pk]), {"username": "outsider", "role": "owner"}).status_code
        == 302
    )
    assert Membership.objects.get(project=team, user=other_user).role == "owner"
    response = client.post(reverse("projects:detail", args=[team.pk]), {"username": "nobody", "role": "member"})
    assert response.status_code == 400 and "There is no user named" in response.content.decode()
    assert client.post(reverse("projects:member-remove", args=[team.pk, other_user.pk])).status_code == 302
    assert not Membership.objects.filter(project=team, user=other_user).exists()


def test_members_cannot_manage_members_and_the_last_owner_stays(client, user, member, team):
    client.force_login(member)
    assert (
        client.post(reverse("projects:detail", args=[team.pk]), {"username": "owner", "role": "member"}).status_code
        == 403
    )
    assert client.post(reverse("projects:member-remove", args=[team.pk, user.pk])).status_code == 403
    client.force_login(user)
    assert client.post(reverse("projects:member-remove", args=[team.pk, user.pk])).status_code == 400


def test_creating_a_project_makes_its_creator_owner_and_current(client, member):
    client.force_login(member)
    response = client.post(reverse("projects:list"), {"name": "  Research   team "})
    project = Project.objects.get(name="Research team")
    assert response.url == reverse("projects:detail", args=[project.pk])
    assert Membership.objects.get(project=project, user=member).role == "owner"
    assert "Research team" in client.get(reverse("tokens:list")).content.decode().split("<h1>")[1].split("</h1>")[0]


@pytest.mark.metering
@pytest.mark.django_db(transaction=True)
def test_a_tokens_requests_are_billed_to_its_project(user, member, objects, team, fake_pool):
    metering = Metering(user=user, token=objects["token"], model_id="fake-chat", source="api", endpoint="/v1/x")
    record = usage_record(metering=metering, outcome="finished", error="", latency_ms=1.0)
    assert record.project_id == team.pk


@pytest.mark.metering
@pytest.mark.django_db(transaction=True)
def test_usage_page_shows_the_current_projects_usage_with_who(client, user, member, objects, team, fake_pool):
    metering = Metering(user=member, model_id="fake-chat", source="playground", endpoint="ws/chat", project_id=team.pk)
    usage_record(metering=metering, outcome="finished", error="", latency_ms=1.0)
    client.force_login(user)
    assert "ws/chat" not in client.get(reverse("usage:usage")).content.decode()  # the personal project
    client.post(reverse("projects:switch"), {"project": team.pk})
    page = client.get(reverse("usage:usage")).content.decode()
    assert "ws/chat" in page and "member" in page
