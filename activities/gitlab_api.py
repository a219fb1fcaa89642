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

Several credentials (GITLAB_TOKEN and each GITLAB_TOKEN__<ALIAS>) are one registry: every client is
made for a project (`project_client`) or a credential alias (`gitlab_client`), and knows its alias
and its user (`agent_user`, looked up with `GET /user` once per hour), so the agent's identity, its
writes and its git token always belong to the project's credential.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gitlab
import requests

from activities.http_errors import PermanentError, raise_transient
from activities.write_door import WriteOutsideDoor, inside_door
from contracts.project_map import DEFAULT_CREDENTIAL
from contracts.settings import Settings
from executors.tasks import RepoRef
from telemetry import audit

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


IDENTITY_TTL_S = 3600.0
_lock = threading.Lock()


@dataclass(frozen=True)
class AgentUser:
    """The GitLab user behind one credential: who "the agent" is in that credential's projects."""

    id: int
    username: str


def credential_token(settings: Settings, alias: str) -> str:
    token = settings.gitlab_token_of(alias)
    if token is None or not token.get_secret_value():
        known = ", ".join(settings.credential_aliases()) or "none"
        variable = "GITLAB_TOKEN" if alias == DEFAULT_CREDENTIAL else f"GITLAB_TOKEN__{alias.upper()}"
        raise PermanentError(
            f"GitLab credential {alias!r} is not configured ({variable}; configured: {known})",
            kind="ConfigurationError",
        )
    return token.get_secret_value()


def gitlab_client(settings: Settings, credential: str = DEFAULT_CREDENTIAL) -> gitlab.Gitlab:
    """A client with one credential's token; `client.credential` names the alias."""
    client = _ReadRetriesOnly(
        settings.gitlab_url,
        private_token=credential_token(settings, credential),
        ssl_verify=settings.gitlab_ssl_verify,
        timeout=20,
        per_page=100,
    )
    client.session.hooks["response"].append(write_failed_transiently)
    client.session.hooks["response"].append(audit_api_call)
    client.credential = credential  # type: ignore[attr-defined]
    return client


def _cache(settings: Settings, name: str) -> dict[Any, Any]:
    return settings._runtime.setdefault(name, {})


def _token_key(settings: Settings, alias: str) -> tuple[str, str, str]:
    digest = hashlib.sha256(credential_token(settings, alias).encode()).hexdigest()
    return settings.gitlab_url, alias, digest


def agent_user(settings: Settings, credential: str = DEFAULT_CREDENTIAL) -> AgentUser:
    """`GET /user` of the credential, cached for an hour. GITLAB_AGENT_USERNAME, when set, names
    the default credential's user (the seed's AGENT_GITLAB_USERNAME)."""
    cache = _cache(settings, "agent_users")
    key = _token_key(settings, credential)
    with _lock:
        hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < IDENTITY_TTL_S:
        return hit[1]
    gl = gitlab_client(settings, credential)
    gl.auth()
    assert gl.user is not None
    username = str(gl.user.username)
    if credential == DEFAULT_CREDENTIAL and settings.gitlab_agent_username:
        username = settings.gitlab_agent_username
    user = AgentUser(int(gl.user.id), username)
    with _lock:
        cache[key] = (time.monotonic(), user)
    return user


def client_user(settings: Settings, gl: gitlab.Gitlab) -> AgentUser:
    """The agent's user for the credential `gl` was made with."""
    return agent_user(settings, getattr(gl, "credential", DEFAULT_CREDENTIAL))


def _project_path(settings: Settings, project_id: int) -> str:
    """The path of a project known only by ID: asked with each credential in turn (default first)
    until one can see it; cached per process."""
    cache = _cache(settings, "project_paths")
    key = (settings.gitlab_url, project_id)
    with _lock:
        if key in cache:
            return cache[key]
    last: Exception | None = None
    for alias in settings.credential_aliases():
        try:
            path = str(gitlab_client(settings, alias).projects.get(project_id).path_with_namespace)
        except (gitlab.GitlabGetError, gitlab.GitlabAuthenticationError) as exc:
            if getattr(exc, "response_code", None) not in (401, 403, 404):
                raise
            last = exc
            continue
        with _lock:
            cache[key] = path
        return path
    raise PermanentError(f"no configured GitLab credential can see project {project_id} ({last})")


def project_credential(settings: Settings, project: int | str) -> str:
    """The alias serving a project (ID or path): its project-map entry's credential_ref, else the
    first `projects:` rule matching its path, else "default". Read per call, so map edits apply."""
    aliases = settings.credential_aliases()
    if len(aliases) <= 1:
        return aliases[0] if aliases else DEFAULT_CREDENTIAL  # one credential: no lookup at all
    ref = str(project).strip("/")
    if not ref.isdigit():
        return settings.project_settings(ref).credential_ref
    project_map = settings.project_map()
    named = [b.credential_ref for b in project_map.values() if b.repo == ref]
    named += [r.credential_ref for r in project_map.projects if r.repo.strip("/") == ref]
    if named:
        return named[0]
    return settings.project_settings(_project_path(settings, int(ref)), int(ref)).credential_ref


def project_client(settings: Settings, project: int | str) -> gitlab.Gitlab:
    """A client with the credential that serves `project` (ID or path)."""
    return gitlab_client(settings, project_credential(settings, project))


def client_token(settings: Settings, gl: gitlab.Gitlab) -> str:
    """The token of `gl`'s credential, for git (clone and push) beside the API calls."""
    return credential_token(settings, getattr(gl, "credential", DEFAULT_CREDENTIAL))


def audit_api_call(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """`audit.api_call` for every GitLab API call (a requests response hook: python-gitlab's own
    session, nothing patched): method, path without the query, status, duration. Never a header."""
    request = response.request
    audit.event(
        "audit.api_call",
        service="gitlab",
        method=request.method,
        path=urlsplit(request.url or "").path,
        status=response.status_code,
        duration_ms=round(response.elapsed.total_seconds() * 1000, 1),
    )


def mr_repo_ref(project: Any, mr: Any, head_sha: str, credential: str = DEFAULT_CREDENTIAL) -> RepoRef:
    """Where an executor clones an MR from: the target project, the target branch, and the source
    branch when it lives in the same project (a fork's head is fetched by SHA), with the alias of
    the credential that may read it (never the token)."""
    same_project = mr.source_project_id == mr.target_project_id
    return RepoRef(
        clone_url=project.http_url_to_repo,
        credential=credential,
        head_sha=head_sha,
        branches=[mr.target_branch] + ([mr.source_branch] if same_project else []),
    )
