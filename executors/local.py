"""TASK_EXECUTOR=local: the agent runs on the worker's host, in a bubblewrap sandbox per process.

The worker clones with the GitLab token (a per-command header; nothing stored), outside any sandbox:
the agent's processes live in PID, mount, network and user namespaces of their own
(executors/process_sandbox.py), so they cannot see that git, its environment, or any other run, and
reach nothing but their lease on the model proxy. Without a working bubblewrap the executor refuses
every run with SandboxUnavailable, which names the fix: there is no unsandboxed path.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil

from contracts.settings import Settings
from executors.base import safe_name
from executors.git_repo import clone
from executors.process_sandbox import ProcessSandbox
from executors.sandbox import run_task
from executors.tasks import AgentResult, AgentTask


class LocalExecutor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sandbox: ProcessSandbox | None = None

    @property
    def sandbox(self) -> ProcessSandbox:
        """Made on first use, so a worker without bubblewrap still starts (and says why it refuses)."""
        if self._sandbox is None:
            self._sandbox = ProcessSandbox.from_settings(self.settings)
        return self._sandbox

    async def run(self, task: AgentTask, *, run_id: str, traceparent: str | None = None) -> AgentResult:
        sandbox = self.sandbox  # refuse before cloning anything
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
            return await run_task(task, repo, self.settings, sandbox=sandbox, traceparent=traceparent)
        finally:
            await asyncio.to_thread(shutil.rmtree, run_dir, True)
