"""Who the agent is on GitLab, so the API can ignore MRs and notes the agent wrote itself.

Looked up once with the agent's token (or taken from GITLAB_AGENT_USERNAME) and cached. If GitLab
is unreachable the answer is "unknown" and the workflows, which check authorship again, decide.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import gitlab

from contracts.settings import Settings

log = logging.getLogger(__name__)
_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class AgentUser:
    id: int | None
    username: str


class AgentIdentity:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._user: AgentUser | None = None
        self._failed_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> AgentUser | None:
        if self._user is not None:
            return self._user
        if time.monotonic() - self._failed_at < _RETRY_AFTER_S:
            return None
        async with self._lock:
            if self._user is None:
                try:
                    self._user = await asyncio.to_thread(self._lookup)
                except Exception as exc:  # any failure only means "unknown for now"
                    self._failed_at = time.monotonic()
                    log.warning("agent identity lookup failed: %s", type(exc).__name__)
            return self._user

    def _lookup(self) -> AgentUser | None:
        settings = self._settings
        if settings.gitlab_token is None:
            if settings.gitlab_agent_username:
                return AgentUser(None, settings.gitlab_agent_username)
            return None
        gl = gitlab.Gitlab(
            settings.gitlab_url,
            private_token=settings.gitlab_token.get_secret_value(),
            ssl_verify=settings.gitlab_ssl_verify,
            timeout=5,
        )
        gl.auth()
        user = gl.user
        assert user is not None
        username = settings.gitlab_agent_username or user.username
        return AgentUser(user.id, username)
