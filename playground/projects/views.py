"""Projects: the list (create one), a project's members (owners add and remove them), and the header's switcher."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from playground.contract.errors import Problem
from playground.projects import services
from playground.projects.forms import MemberAddForm, ProjectCreateForm
from playground.projects.selectors import members_list, membership_get, project_get, project_list
from playground.projects.session import current_set


@login_required
@require_http_methods(["GET", "POST"])
def project_index(request: HttpRequest) -> HttpResponse:
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = services.project_create(user=request.user, name=form.cleaned_data["name"])
        current_set(request, project)
        return redirect("projects:detail", project_id=project.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "projects/list.html", {"form": form, "projects": project_list(user=request.user)}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    membership = membership_get(user=request.user, project_id=project_id)  # a non-member: 404
    form = MemberAddForm(request.POST or None)
    error, status = "", 200
    if request.method == "POST" and form.is_valid():
        try:
            services.member_add(user=request.user, project_id=project_id, **form.cleaned_data)
        except Problem as problem:
            error, status = problem.message, 400
        else:
            return redirect("projects:detail", project_id=project_id)
    elif request.method == "POST":
        status = 400
    context = {
        "project": membership.project,
        "membership": membership,
        "members": members_list(project=membership.project),
        "form": form,
        "error": error,
    }
    return render(request, "projects/detail.html", context, status=status)


@login_required
@require_POST
def member_remove(request: HttpRequest, project_id: int, member_id: int) -> HttpResponse:
    try:
        services.member_remove(user=request.user, project_id=project_id, member_id=member_id)
    except Problem as problem:
        return HttpResponse(problem.message, status=400, content_type="text/plain; charset=utf-8")
    if member_id == request.user.pk:
        return redirect("projects:list")
    return redirect("projects:detail", project_id=project_id)


@login_required
@require_POST
def project_switch(request: HttpRequest) -> HttpResponse:
    try:
        project_id = int(request.POST.get("project", ""))
    except ValueError:
        project_id = 0
    current_set(request, project_get(user=request.user, project_id=project_id))  # a non-member: 404
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("catalog")
