"""Every effect re-checks its authority where it happens, not only at the webhook.

A workflow can be started by hand (`temporal workflow start`) with any input, and an activity can be
scheduled with any arguments, so the activities that read or write a GitLab project check that the
project is one this deployment serves (`GITLAB_PROJECTS`) with GitLab's own ID and path, and raise
`PermanentError(kind=PROJECT_NOT_SERVED)` otherwise. The workflows end such a run "ignored" with the
reason; nothing is read further, written or pushed.
"""

from __future__ import annotations

from typing import Any

from contracts.errors import PermanentError
from contracts.settings import Settings

PROJECT_NOT_SERVED = "ProjectNotServed"


def check_served(settings: Settings, project: Any) -> None:
    """Raise unless `project` (a python-gitlab project) is in GITLAB_PROJECTS (empty: all)."""
    path = str(getattr(project, "path_with_namespace", "") or "")
    if not settings.serves_project(int(project.id), path):
        raise PermanentError(
            f"project {path or project.id} is not in GITLAB_PROJECTS", kind=PROJECT_NOT_SERVED
        )
