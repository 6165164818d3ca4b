"""Reading endpoints: a user sees those of the projects they are a member of; any other is a 404."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from playground.contract.errors import Problem
from playground.endpoints.models import Endpoint
from playground.projects.models import Project
from playground.projects.selectors import project_ids


def endpoint_list(*, project: Project) -> QuerySet[Endpoint]:
    return Endpoint.objects.filter(project=project)


def endpoint_get(*, user: AbstractBaseUser, endpoint_id: int) -> Endpoint:
    endpoint = Endpoint.objects.select_related("project").filter(pk=endpoint_id, project__in=project_ids(user=user))
    found = endpoint.first()
    if found is None:
        raise Http404("no such endpoint")
    return found


def endpoint_models(*, project_id: int | None) -> list[dict[str, Any]]:
    """/v1/models entries for a project's endpoints: the model's entry under the endpoint's id, with its path."""
    from playground.api import openai

    rows = []
    for endpoint in Endpoint.objects.filter(project_id=project_id).order_by("pk"):
        try:
            entry = openai.model_get(model_id=endpoint.model_id)
        except Problem:  # its model left the catalog: nothing to list
            continue
        rows.append({**entry, "id": f"is-{endpoint.pk}", "root": endpoint.model_id, "endpoint": endpoint.path})
    return rows
