"""The python-gitlab client the activities use, configured so Temporal owns every retry."""

from __future__ import annotations

from typing import Any

import gitlab

from activities.http_errors import PermanentError, retrying_session
from contracts.settings import Settings
from executors.tasks import RepoRef


class _NoLibraryRetries(gitlab.Gitlab):
    # python-gitlab sleeps and retries 429s itself (up to 10 times) by default; a crash would lose
    # that waiting and the UI would not show it, so every request goes out exactly once here.
    def http_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["obey_rate_limit"] = False
        kwargs["retry_transient_errors"] = False
        return super().http_request(*args, **kwargs)


def gitlab_client(settings: Settings) -> gitlab.Gitlab:
    if settings.gitlab_token is None:
        raise PermanentError("GITLAB_TOKEN is not configured", kind="ConfigurationError")
    return _NoLibraryRetries(
        settings.gitlab_url,
        private_token=settings.gitlab_token.get_secret_value(),
        ssl_verify=settings.gitlab_ssl_verify,
        timeout=30,
        session=retrying_session(),
        per_page=100,
    )


def mr_repo_ref(project: Any, mr: Any, head_sha: str) -> RepoRef:
    """Where an executor clones an MR from: the target project, the target branch, and the source
    branch when it lives in the same project (a fork's head is fetched by SHA)."""
    same_project = mr.source_project_id == mr.target_project_id
    return RepoRef(
        clone_url=project.http_url_to_repo,
        head_sha=head_sha,
        branches=[mr.target_branch] + ([mr.source_branch] if same_project else []),
    )
