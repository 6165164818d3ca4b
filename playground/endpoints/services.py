"""Deploying, pausing and deleting endpoints, and what a call to one goes through: the token's project, the state,
the endpoint's rate limit, and the body the /v1 dialect then reads (the model fixed, the defaults and system prompt
supplied)."""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Sum

from playground import serving
from playground.contract.errors import Problem
from playground.endpoints.models import Endpoint
from playground.projects.models import Project
from playground.projects.selectors import owner_get

# Which /v1 routes an endpoint answers, by its model's task.
ROUTES_BY_TASK = {
    "text-to-text": ("chat/completions",),
    "text-completion": ("completions",),
    "embeddings": ("embeddings",),
    "speech-to-text": ("audio/transcriptions", "audio/translations"),
    "text-to-speech": ("audio/speech",),
}
PARAM_NAMES = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "presence_penalty", "frequency_penalty", "seed")


def endpoint_deploy(
    *,
    user: AbstractBaseUser,
    project: Project,
    name: str,
    model_id: str,
    params: dict[str, Any] | None = None,
    system_prompt: str = "",
    requests_per_minute: int | None = None,
) -> Endpoint:
    """Deploy a catalog model in a project; only its owners may (a non-member: 404; a member: 403)."""
    owner_get(user=user, project_id=project.pk)
    spec = serving.model_for(model_id=model_id, tasks=tuple(ROUTES_BY_TASK), where="an endpoint")
    unknown = sorted(set(params or {}) - set(PARAM_NAMES))
    if unknown:
        raise Problem("unknown_parameter", f"an endpoint has no default {unknown[0]!r}", param=unknown[0])
    return Endpoint.objects.create(
        project=project,
        created_by=user,
        name=" ".join(name.split()) or spec.id,
        model_id=spec.id,
        params=dict(params or {}),
        system_prompt=system_prompt,
        requests_per_minute=requests_per_minute,
    )


def _owned(*, user: AbstractBaseUser, endpoint_id: int) -> Endpoint:
    from playground.endpoints.selectors import endpoint_get

    endpoint = endpoint_get(user=user, endpoint_id=endpoint_id)  # a non-member: 404
    owner_get(user=user, project_id=endpoint.project_id)  # a member: 403
    return endpoint


def endpoint_pause(*, user: AbstractBaseUser, endpoint_id: int, paused: bool) -> Endpoint:
    """Pause (calls get 503 endpoint_paused) or resume; only an owner."""
    endpoint = _owned(user=user, endpoint_id=endpoint_id)
    endpoint.paused = paused
    endpoint.save(update_fields=["paused"])
    return endpoint


def endpoint_delete(*, user: AbstractBaseUser, endpoint_id: int) -> None:
    """Delete it; its URL answers 404 from the next call on. Only an owner."""
    _owned(user=user, endpoint_id=endpoint_id).delete()


def endpoint_for_call(
    *, token: Any, project_id: int, endpoint_id: int, query_project: str | None, route: str
) -> Endpoint:
    """The endpoint a token calls: a token of another project, a `?project_id=` naming another project, an unknown
    endpoint or a route its model's task does not have: 404; paused: 503; over its own rate limit: 429."""
    endpoint = Endpoint.objects.filter(pk=endpoint_id, project_id=project_id).first()
    if (
        endpoint is None
        or token.project_id != project_id
        or (query_project not in (None, "") and query_project != str(project_id))
    ):
        raise Problem("not_found", f"no endpoint is-{endpoint_id} in project p-{project_id} for this token")
    spec = serving.model_for(model_id=endpoint.model_id, tasks=tuple(ROUTES_BY_TASK), where="an endpoint")
    if route != "models" and route not in ROUTES_BY_TASK.get(spec.task, ()):
        raise Problem("unknown_url", f"the endpoint serves {spec.task}; it has no route v1/{route}")
    if endpoint.paused:
        raise Problem("endpoint_paused", f"the endpoint {endpoint.name!r} is paused; an owner can resume it")
    if route != "models":
        _rate_admit(endpoint)
    return endpoint


def _rate_admit(endpoint: Endpoint) -> None:
    """The endpoint's own limit, per calendar minute in the cache (shared by every process with the Redis cache)."""
    if endpoint.requests_per_minute is None:
        return
    now = time.time()
    key = f"endpoint-rpm:{endpoint.pk}:{int(now // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=120)
        count = 1
    if count > endpoint.requests_per_minute:
        wait = max(1, 60 - int(now % 60))
        raise Problem(
            "rate_limit_exceeded",
            f"the endpoint's limit of {endpoint.requests_per_minute} requests per minute is reached; retry in {wait} s",
            headers={"Retry-After": str(wait)},
            extra={"retry_after": wait},
        )


def endpoint_body(*, endpoint: Endpoint, body: dict[str, Any], chat: bool) -> dict[str, Any]:
    """The body the /v1 dialect reads: the endpoint's model, its defaults where the request sets none, and its fixed
    system prompt in place of any system message the request sends."""
    adjusted = {**{k: v for k, v in endpoint.params.items() if k in PARAM_NAMES}, **body, "model": endpoint.model_id}
    messages = body.get("messages")
    if chat and endpoint.system_prompt and isinstance(messages, list):
        kept = [m for m in messages if not (isinstance(m, dict) and m.get("role") in ("system", "developer"))]
        adjusted["messages"] = [{"role": "system", "content": endpoint.system_prompt}, *kept]
    return adjusted


def endpoint_task(endpoint: Endpoint) -> str:
    return serving.model_for(model_id=endpoint.model_id, tasks=tuple(ROUTES_BY_TASK), where="an endpoint").task


def endpoint_usage(*, endpoint: Endpoint, start: date, end: date) -> dict[str, Any]:
    """The endpoint's calls in the ledger (its records carry its path as their endpoint)."""
    from playground.usage.selectors import usage_records

    records = usage_records(project=endpoint.project, start=start, end=end).filter(endpoint__startswith=endpoint.path)
    totals = records.aggregate(
        requests=Count("id"),
        prompt_tokens=Sum("prompt_tokens"),
        completion_tokens=Sum("completion_tokens"),
        cost=Sum("cost"),
    )
    return {"totals": totals, "recent": list(records.select_related("user").order_by("-created_at")[:20])}


def endpoint_snippets(*, endpoint: Endpoint, base_url: str) -> dict[str, str]:
    """Get Code: cURL, Python requests and the openai SDK with base_url set to the endpoint (chat models; the other
    tasks show their route in cURL)."""
    task = endpoint_task(endpoint)
    route = ROUTES_BY_TASK.get(task, ("chat/completions",))[0]
    if task == "text-to-text":
        body = {"model": endpoint.name, "messages": [{"role": "user", "content": "Hello!"}]}
    elif task == "text-completion":
        body = {"model": endpoint.name, "prompt": "Once upon a time"}
    elif task == "embeddings":
        body = {"model": endpoint.name, "input": "Hello!"}
    else:
        body = {"model": endpoint.name, "input": "Hello!"}
    data = json.dumps(body, indent=2)
    curl = (
        f"curl {base_url}{route} \\\n  -H 'Authorization: Bearer YOUR_API_TOKEN' \\\n"
        f"  -H 'Content-Type: application/json' \\\n  -d '{data}'"
    )
    requests_code = (
        f"import requests\n\nresponse = requests.post(\n    {base_url + route!r},\n"
        f"    headers={{'Authorization': 'Bearer YOUR_API_TOKEN'}},\n    json={body!r},\n    timeout=60,\n)\n"
        "print(response.json())\n"
    )
    if task == "text-to-text":
        sdk = (
            f"from openai import OpenAI\n\nclient = OpenAI(base_url={base_url!r}, api_key='YOUR_API_TOKEN')\n"
            f"reply = client.chat.completions.create(model={endpoint.name!r}, "
            "messages=[{'role': 'user', 'content': 'Hello!'}])\nprint(reply.choices[0].message.content)\n"
        )
    elif task == "text-completion":
        sdk = (
            f"from openai import OpenAI\n\nclient = OpenAI(base_url={base_url!r}, api_key='YOUR_API_TOKEN')\n"
            f"reply = client.completions.create(model={endpoint.name!r}, prompt='Once upon a time')\n"
            "print(reply.choices[0].text)\n"
        )
    else:
        sdk = (
            f"from openai import OpenAI\n\nclient = OpenAI(base_url={base_url!r}, api_key='YOUR_API_TOKEN')\n"
            f"print(client.models.list())\n"
        )
    return {"cURL": curl, "Python requests": requests_code, "OpenAI SDK": sdk}
