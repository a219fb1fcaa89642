"""Where a Jira issue's change goes: its mapped GitLab project (through the mapping's credential),
re-checked as served, and the target branch's head. The plan run and the implementation both start
here, so both see the same project through the same identity."""

from __future__ import annotations

from typing import Any

import gitlab

from activities.authority import check_served
from activities.gitlab_api import gitlab_client
from activities.http_errors import PermanentError
from activities.jira_api import mapping_for
from contracts.settings import JiraProjectMapping, Settings


def issue_target(settings: Settings, issue_key: str) -> tuple[JiraProjectMapping, Any, str]:
    """(mapping, python-gitlab project, target branch SHA). A missing target branch is permanent:
    retrying cannot create it."""
    _, mapping = mapping_for(settings, issue_key)
    project = gitlab_client(settings, mapping.credential_ref).projects.get(mapping.repo)
    check_served(settings, project)
    try:
        target_sha = project.branches.get(mapping.target_branch).commit["id"]
    except gitlab.GitlabGetError as exc:
        if exc.response_code == 404:
            raise PermanentError(
                f"target branch '{mapping.target_branch}' does not exist in {mapping.repo}"
            ) from exc
        raise
    return mapping, project, target_sha
