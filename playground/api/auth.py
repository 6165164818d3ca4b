"""Bearer-token authentication, failed-authentication bans and JSON errors for every API view."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from inference import EngineError
from playground.api.http import error_response
from playground.contract.errors import Problem, problem
from playground.tokens.limits import limits_check
from playground.tokens.services import token_authenticate
from playground.tokens.throttle import auth_failure_record, ban_message, ban_remaining, request_address
from playground.usage.services import Caller, caller_set

AsyncView = Callable[..., Awaitable[HttpResponse]]


CLUSTER_USERNAME = "cluster"  # an engine node's ledger records the web tier's requests as this user's


@functools.cache
def cluster_user() -> Any:
    user, created = get_user_model().objects.get_or_create(username=CLUSTER_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _bearer(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _admit(*, address: str, raw: str) -> tuple[Any, Any]:
    """The caller (user, API token) of a request from `address` presenting `raw`, or a Problem: a banned address, a
    wrong or missing token, a limit reached. Blocking (cache and database): the view makes one trip to a thread."""
    banned_for = ban_remaining(address=address)
    if banned_for > 0:
        message = ban_message(address=address, seconds=banned_for)
        raise Problem("banned", message, headers={"Retry-After": str(banned_for)})
    if settings.PLAYGROUND_ROLE == "engine":  # a fleet's node: the web tier's cluster token, no user limits
        if not hmac.compare_digest(raw.encode(), settings.PLAYGROUND_CLUSTER_TOKEN.encode()):
            if raw:
                auth_failure_record(address=address)
            message = "invalid cluster token" if raw else "missing cluster token: send Authorization: Bearer"
            raise Problem("invalid_api_key", message, headers={"WWW-Authenticate": "Bearer"})
        return cluster_user(), None
    token = token_authenticate(raw=raw) if raw else None
    if token is None:
        if raw:  # only a token presented and wrong counts: a missing header is no attempt (an <img> tag)
            auth_failure_record(address=address)
        message = "invalid API token" if raw else "missing API token: send Authorization: Bearer <token>"
        raise Problem("invalid_api_key", message, headers={"WWW-Authenticate": "Bearer"})
    limits_check(token=token, now=timezone.now())  # 429 rate_limit_exceeded
    return token.user, token


def api_view(view: AsyncView) -> AsyncView:
    """Wrap an async API view: ban check, token check, and every refusal as the documented error JSON."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            user, token = await sync_to_async(_admit)(address=request_address(request), raw=_bearer(request))
            request.api_token = token  # type: ignore[attr-defined]
            request.api_user = user  # type: ignore[attr-defined]
            caller_set(Caller(user=user, token=token, source="api", endpoint=request.path))
            return await view(request, *args, **kwargs)
        except EngineError as exc:  # a Problem, or an engine's refusal
            return error_response(problem(exc), path=request.path)  # in the shape of the route's dialect

    return csrf_exempt(wrapper)
