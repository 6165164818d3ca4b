"""The data migration: existing users get a personal project, and their tokens, usage, datasets, jobs and
conversations move into it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [
    ("projects", None),
    ("tokens", "0002_limits"),
    ("usage", "0002_token_created_index"),
    ("bulk", "0004_dataset_upload_in_progress"),
    ("chat", "0003_branches"),
]
AFTER = [
    ("projects", "0002_personal_projects"),
    ("tokens", "0003_apitoken_project"),
    ("usage", "0003_usagerecord_project"),
    ("bulk", "0006_dataset_name_per_project"),
    ("chat", "0004_conversation_project"),
]


@pytest.mark.django_db(transaction=True)
def test_existing_data_moves_into_each_owners_personal_project() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state([node for node in BEFORE if node[1]]).apps
    User = old.get_model("auth", "User")
    ada, bob = User.objects.create(username="ada"), User.objects.create(username="bob")
    old.get_model("tokens", "ApiToken").objects.create(user=ada, label="t", digest="d" * 64, prefix="p")
    price = old.get_model("usage", "PriceVersion").objects.create(model_id="m", effective_from=timezone.now())
    old.get_model("usage", "UsageRecord").objects.create(
        request_id="r1",
        user=bob,
        model_id="m",
        task="chat",
        source="api",
        endpoint="/v1",
        outcome="finished",
        price_version=price,
        cost=0,
    )
    dataset = old.get_model("bulk", "Dataset").objects.create(user=ada, name="d")
    old.get_model("bulk", "BulkJob").objects.create(user=ada, dataset=dataset, model_id="m", total=1, last_position=1)
    old.get_model("chat", "Conversation").objects.create(user=bob, model_id="m")

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Project = new.get_model("projects", "Project")
    personal = {p.personal_of_id: p.pk for p in Project.objects.all()}
    assert set(personal) == {ada.pk, bob.pk}
    assert new.get_model("projects", "Membership").objects.filter(role="owner").count() == 2
    assert new.get_model("tokens", "ApiToken").objects.get().project_id == personal[ada.pk]
    assert new.get_model("usage", "UsageRecord").objects.get().project_id == personal[bob.pk]
    assert new.get_model("bulk", "Dataset").objects.get().project_id == personal[ada.pk]
    assert new.get_model("bulk", "BulkJob").objects.get().project_id == personal[ada.pk]
    assert new.get_model("chat", "Conversation").objects.get().project_id == personal[bob.pk]
    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
