from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from playground.projects.selectors import project_list
from playground.projects.session import current_project


def projects(request: HttpRequest) -> dict[str, Any]:
    """The header's project switcher: the user's projects and the current one."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return {}
    return {"current_project": current_project(request), "user_projects": list(project_list(user=user))}
