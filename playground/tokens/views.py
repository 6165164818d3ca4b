"""The API tokens page: create (the raw value is shown once, in the response to the POST), list, revoke; and each
token's limits page (rate limits and spending caps, with what is used and left)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from playground.projects.session import current_membership, current_project
from playground.tokens import services
from playground.tokens.forms import TokenCreateForm, TokenLimitsForm
from playground.tokens.limits import limits_status
from playground.tokens.models import ApiToken
from playground.tokens.selectors import token_get, token_limits_list

TEMPLATE = "tokens/list.html"
LIMITS_TEMPLATE = "tokens/limits.html"


def _context(
    request: HttpRequest, *, form: TokenCreateForm, new_token: ApiToken | None = None, raw: str = ""
) -> dict[str, Any]:
    membership = current_membership(request)
    return {
        "form": form,
        "rows": token_limits_list(project=membership.project),
        "new_token": new_token,
        "raw_token": raw,
        "project": membership.project,
        "is_owner": membership.is_owner,  # members see the project's tokens; owners create and revoke them
    }


@login_required
@require_GET
def token_index(request: HttpRequest) -> HttpResponse:
    return render(request, TEMPLATE, _context(request, form=TokenCreateForm()))


@login_required
@require_POST
def token_new(request: HttpRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST)
    template = f"{TEMPLATE}#token-panel" if request.headers.get("HX-Request") else TEMPLATE
    if not form.is_valid():
        # htmx only swaps 2xx responses in, so it gets its errors with a 200; a plain post gets a 400.
        status = 200 if request.headers.get("HX-Request") else 400
        return render(request, template, _context(request, form=form), status=status)
    token, raw = services.token_create(
        user=request.user,
        label=form.cleaned_data["label"],
        expires_at=form.expires_at(),
        project=current_project(request),  # a member: 403
    )
    # Rendered straight from the POST rather than redirected: the raw value must not be stored anywhere, not even
    # in the session, so this response is the only place it ever appears. Keep it out of every cache.
    response = render(request, template, _context(request, form=TokenCreateForm(), new_token=token, raw=raw))
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    services.token_revoke(user=request.user, token_id=token_id)  # a non-member: 404; a member: 403
    if request.headers.get("HX-Request"):
        return render(request, f"{TEMPLATE}#token-list", _context(request, form=TokenCreateForm()))
    return redirect("tokens:list")


@login_required
@require_http_methods(["GET", "POST"])
def token_limits(request: HttpRequest, token_id: int) -> HttpResponse:
    token = token_get(user=request.user, token_id=token_id)  # a non-member: 404
    htmx = bool(request.headers.get("HX-Request"))
    status, saved = 200, False
    if request.method == "POST":
        form = TokenLimitsForm(request.POST)
        if form.is_valid():
            token = services.token_limits_set(user=request.user, token_id=token.pk, **form.cleaned_data)
            if not htmx:
                return redirect(f"{reverse('tokens:list')}#token-{token.pk}")
            form, saved = TokenLimitsForm.for_token(token), True
        elif not htmx:  # htmx only swaps 2xx responses in, so it gets its errors with a 200
            status = 400
    else:
        form = TokenLimitsForm.for_token(token)
    context = {"token": token, "form": form, "limits": limits_status(token=token), "saved": saved}
    template = f"{LIMITS_TEMPLATE}#limits-panel" if htmx else LIMITS_TEMPLATE
    return render(request, template, context, status=status)
