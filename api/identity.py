"""Who the agent is on GitLab, so the API can ignore MRs and notes the agent wrote itself and see
@mentions of it.

Each GitLab credential (GITLAB_TOKEN, GITLAB_TOKEN__<ALIAS>) is its own user: a project's agent is
the user of the credential that serves it (its project-map entry's credential_ref, else a matching
`projects:` rule, else "default"). Looked up with `GET /user` once per credential (GITLAB_AGENT_USERNAME
names the default one's user) and cached for an hour. If GitLab is unreachable the answer is
"unknown" and the workflows, which check authorship again, decide.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import gitlab

from contracts.project_map import DEFAULT_CREDENTIAL
from contracts.settings import Settings
from telemetry import audit

log = logging.getLogger(__name__)
_RETRY_AFTER_S = 60.0
_TTL_S = 3600.0


@dataclass(frozen=True)
class AgentUser:
    id: int | None
    username: str


class AgentIdentity:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._users: dict[str, tuple[float, AgentUser]] = {}
        self._failed_at: dict[str, float] = {}
        self._lock = asyncio.Lock()

    def credential_of(self, project_path: str) -> str:
        aliases = self._settings.credential_aliases()
        if len(aliases) <= 1:
            return aliases[0] if aliases else DEFAULT_CREDENTIAL
        return self._settings.project_settings(project_path).credential_ref

    async def get(self, project_path: str = "") -> AgentUser | None:
        """The agent's user in the project at `project_path` (None: unknown for now)."""
        alias = self.credential_of(project_path)
        cached = self._users.get(alias)
        if cached is not None and time.monotonic() - cached[0] < _TTL_S:
            return cached[1]
        if time.monotonic() - self._failed_at.get(alias, -_RETRY_AFTER_S) < _RETRY_AFTER_S:
            return cached[1] if cached else None
        async with self._lock:
            cached = self._users.get(alias)
            if cached is None or time.monotonic() - cached[0] >= _TTL_S:
                try:
                    user = await asyncio.to_thread(self._lookup, alias)
                except Exception as exc:  # any failure only means "unknown for now"
                    self._failed_at[alias] = time.monotonic()
                    log.warning(
                        "agent identity lookup failed for credential %s: %s", alias, type(exc).__name__
                    )
                    return cached[1] if cached else None
                if user is None:
                    return None
                self._users[alias] = cached = (time.monotonic(), user)
            return cached[1]

    def _lookup(self, alias: str) -> AgentUser | None:
        settings = self._settings
        named = settings.gitlab_agent_username if alias == DEFAULT_CREDENTIAL else None
        token = settings.gitlab_token_of(alias)
        if token is None:
            return AgentUser(None, named) if named else None
        gl = gitlab.Gitlab(
            settings.gitlab_url,
            private_token=token.get_secret_value(),
            ssl_verify=settings.gitlab_ssl_verify,
            timeout=5,
        )
        try:
            gl.auth()
        except Exception as exc:
            audit.event(
                "audit.auth_failure",
                logging.WARNING,
                source="gitlab",
                call="GET /user",
                reason=type(exc).__name__,
                status=getattr(exc, "response_code", None),
            )
            raise
        user = gl.user
        assert user is not None
        audit.event(
            "audit.auth_attempt",
            source="gitlab",
            call="GET /user",
            credential=alias,
            outcome="ok",
            user=user.username,
        )
        return AgentUser(user.id, named or user.username)
