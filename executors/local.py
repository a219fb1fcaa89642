"""TASK_EXECUTOR=local: the agent runs as a subprocess of the worker, in a run directory of its own.

The worker clones with the GitLab token (as a per-command header; nothing stored), then hands the
clone to `run_task`, whose Copilot CLI child gets an allowlisted environment without that token, and
with a BYOK provider not even the provider key: only a per-run lease on the worker's model proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
from collections.abc import AsyncIterator

from pydantic import SecretStr

from contracts.settings import Settings
from executors.base import safe_name
from executors.git_repo import clone
from executors.model_proxy import ModelProxy
from executors.sandbox import run_task
from executors.tasks import AgentResult, AgentTask


class LocalExecutor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._proxy: ModelProxy | None = None
        if settings.copilot_provider_base_url:
            key = settings.copilot_provider_api_key
            self._proxy = ModelProxy(
                settings.copilot_provider_base_url, key.get_secret_value() if key else None
            )

    @contextlib.asynccontextmanager
    async def _agent_settings(self) -> AsyncIterator[Settings]:
        """The settings the agent run sees: with BYOK, the model proxy and a per-run lease instead of
        the provider's URL and key (see executors/model_proxy.py)."""
        if self._proxy is None:
            yield self.settings
            return
        async with self._proxy.lease() as token:
            yield self.settings.model_copy(
                update={
                    "copilot_provider_base_url": self._proxy.base_url,
                    "copilot_provider_api_key": SecretStr(token),
                }
            )

    async def run(self, task: AgentTask, *, run_id: str, traceparent: str | None = None) -> AgentResult:
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
        run_dir = self.settings.work_path / f"{safe_name(run_id, 40)}-{digest}"
        # A retried attempt starts from a clean directory: whatever the crashed one left is discarded.
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        token = self.settings.gitlab_token.get_secret_value() if self.settings.gitlab_token else None
        try:
            repo = await asyncio.to_thread(
                clone,
                task.repo.clone_url,
                run_dir / "repo",
                token=token,
                sha=task.repo.head_sha,
                branches=task.repo.branches,
            )
            async with self._agent_settings() as settings:
                return await run_task(task, repo, settings, traceparent=traceparent)
        finally:
            await asyncio.to_thread(shutil.rmtree, run_dir, True)
