"""The python-gitlab client the activities use, and how its retries and Temporal's fit together.

Two layers, each where it is cheapest: python-gitlab retries one failing request a few times
(429 honouring Retry-After, 5xx and connection errors, with its short exponential wait), because
redoing a whole multi-request activity (posting a review is dozens of requests) for one flaky
response would multiply the load on an already struggling GitLab. What still fails leaves the
activity and Temporal's retry policy takes over: it survives worker crashes and shows every attempt.
"""

from __future__ import annotations

from typing import Any

import gitlab

from activities.http_errors import PermanentError
from contracts.settings import Settings
from executors.tasks import RepoRef

REQUEST_RETRIES = 3


class _BoundedRetries(gitlab.Gitlab):
    # python-gitlab's default is up to 10 retries with waits that can add up to minutes inside one
    # activity attempt; a few quick ones, then Temporal's durable retry.
    def http_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["max_retries"] = REQUEST_RETRIES
        kwargs["retry_transient_errors"] = True
        return super().http_request(*args, **kwargs)


def gitlab_client(settings: Settings) -> gitlab.Gitlab:
    if settings.gitlab_token is None:
        raise PermanentError("GITLAB_TOKEN is not configured", kind="ConfigurationError")
    return _BoundedRetries(
        settings.gitlab_url,
        private_token=settings.gitlab_token.get_secret_value(),
        ssl_verify=settings.gitlab_ssl_verify,
        timeout=20,
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
