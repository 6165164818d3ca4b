"""Endpoint pages: the current project's endpoints (owners deploy), and each endpoint's Overview, Get Code and
Usage, with Pause/Resume and Delete for owners."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from playground.contract.errors import Problem
from playground.endpoints import services
from playground.endpoints.forms import EndpointForm
from playground.endpoints.selectors import endpoint_get, endpoint_list
from playground.projects.selectors import membership_get
from playground.projects.session import current_membership


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_index(request: HttpRequest) -> HttpResponse:
    membership = current_membership(request)
    form = EndpointForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                endpoint = services.endpoint_deploy(
                    user=request.user,
                    project=membership.project,
                    name=form.cleaned_data["name"],
                    model_id=form.cleaned_data["model"],
                    params=form.params(),
                    system_prompt=form.cleaned_data["system_prompt"],
                    requests_per_minute=form.cleaned_data["requests_per_minute"],
                )
            except Problem as problem:
                form.add_error(None, problem.message)
            else:
                return redirect("endpoints:detail", endpoint_id=endpoint.pk)
        status = 400
    context = {"form": form, "endpoints": endpoint_list(project=membership.project), "membership": membership}
    return render(request, "endpoints/list.html", context, status=status)


@login_required
@require_GET
def endpoint_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = endpoint_get(user=request.user, endpoint_id=endpoint_id)  # a non-member: 404
    membership = membership_get(user=request.user, project_id=endpoint.project_id)
    base_url = request.build_absolute_uri(endpoint.path)
    end = timezone.localdate()
    context = {
        "endpoint": endpoint,
        "membership": membership,
        "base_url": base_url,
        "routes": services.ROUTES_BY_TASK.get(services.endpoint_task(endpoint), ()),
        "usage": services.endpoint_usage(endpoint=endpoint, start=end - timedelta(days=29), end=end),
        "snippets": services.endpoint_snippets(endpoint=endpoint, base_url=base_url),
    }
    return render(request, "endpoints/detail.html", context)


@login_required
@require_POST
def endpoint_pause(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    services.endpoint_pause(user=request.user, endpoint_id=endpoint_id, paused=request.POST.get("paused") != "0")
    return redirect("endpoints:detail", endpoint_id=endpoint_id)


@login_required
@require_POST
def endpoint_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    services.endpoint_delete(user=request.user, endpoint_id=endpoint_id)
    return redirect("endpoints:list")
