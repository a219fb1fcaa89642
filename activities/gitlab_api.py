"""The python-gitlab client the activities use, and how its retries and Temporal's fit together.

Reads and writes are retried differently. A read is safe to repeat, so python-gitlab retries one
failing GET a few times (429 honouring Retry-After, 5xx and connection errors, with its short
exponential wait): redoing a whole multi-request activity for one flaky response would multiply the
load on an already struggling GitLab. A write is never re-sent by the library: its reply may have
been lost after GitLab processed it, so a write leaves python-gitlab at its first failure and only
the write door (`gitlab_writes.py`) decides, after looking for the write's effect. A POST, PUT or
DELETE sent from outside the door is refused before it leaves the process (`WriteOutsideDoor`).
What still fails leaves the activity and Temporal's retry policy takes over: it survives worker
crashes and shows every attempt.
"""

from __future__ import annotations

from typing import Any

import gitlab

from activities.http_errors import PermanentError, raise_transient
from activities.write_door import WriteOutsideDoor, inside_door
from contracts.settings import Settings
from executors.tasks import RepoRef

REQUEST_RETRIES = 3
READS = frozenset({"get", "head", "options"})


class _ReadRetriesOnly(gitlab.Gitlab):
    def http_request(self, verb: str, path: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if verb.lower() in READS:
            # python-gitlab's default is up to 10 retries with waits that can add up to minutes
            # inside one activity attempt; a few quick ones, then Temporal's durable retry.
            kwargs["max_retries"] = REQUEST_RETRIES
            kwargs["retry_transient_errors"] = True
        else:
            if not inside_door():
                raise WriteOutsideDoor(f"GitLab {verb.upper()} {path} outside activities/gitlab_writes.py")
            kwargs["max_retries"] = 0
            kwargs["retry_transient_errors"] = False
            kwargs["obey_rate_limit"] = False
        return super().http_request(verb, path, *args, **kwargs)


def write_failed_transiently(response: Any, *args: Any, **kwargs: Any) -> None:
    """`requests` response hook: a write answered 429/5xx leaves python-gitlab as
    `TransientHTTPError`, which keeps the `Retry-After` python-gitlab's own error drops, so the door
    waits as long as GitLab asked. Reads pass: python-gitlab retries them itself."""
    if str(response.request.method).lower() not in READS:
        raise_transient(response)


def gitlab_client(settings: Settings) -> gitlab.Gitlab:
    if settings.gitlab_token is None:
        raise PermanentError("GITLAB_TOKEN is not configured", kind="ConfigurationError")
    client = _ReadRetriesOnly(
        settings.gitlab_url,
        private_token=settings.gitlab_token.get_secret_value(),
        ssl_verify=settings.gitlab_ssl_verify,
        timeout=20,
        per_page=100,
    )
    client.session.hooks["response"].append(write_failed_transiently)
    return client


def mr_repo_ref(project: Any, mr: Any, head_sha: str) -> RepoRef:
    """Where an executor clones an MR from: the target project, the target branch, and the source
    branch when it lives in the same project (a fork's head is fetched by SHA)."""
    same_project = mr.source_project_id == mr.target_project_id
    return RepoRef(
        clone_url=project.http_url_to_repo,
        head_sha=head_sha,
        branches=[mr.target_branch] + ([mr.source_branch] if same_project else []),
    )
