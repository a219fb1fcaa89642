"""TASK_EXECUTOR=local: the agent runs as a subprocess of the worker, in a run directory of its own.

The worker clones with the GitLab token (as a per-command header; nothing stored), then hands the
clone to `run_task`, whose Copilot CLI child gets an allowlisted environment without that token.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil

from contracts.settings import Settings
from executors.base import safe_name
from executors.git_repo import clone
from executors.sandbox import run_task
from executors.tasks import AgentResult, AgentTask


class LocalExecutor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

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
            return await run_task(task, repo, self.settings, traceparent=traceparent)
        finally:
            await asyncio.to_thread(shutil.rmtree, run_dir, True)
