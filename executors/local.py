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
import itertools
import os
import shutil
from pathlib import Path

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
        run_dir = self._attempt_dir(run_id)
        secret = self.settings.gitlab_token_of(task.repo.credential)  # the project's credential
        token = secret.get_secret_value() if secret else None
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
            _ACTIVE.discard(run_dir)
            remove_later(run_dir)

    def _attempt_dir(self, run_id: str) -> Path:
        """A directory of this attempt alone. The run id is the same for every attempt of an activity,
        and an attempt whose heartbeat timed out may still be cloning (or cleaning up) in this worker
        while its retry starts: one shared directory let each delete the other's checkout. What a
        crashed worker left behind under the same run id (its pid is gone) is swept here."""
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
        prefix = f"{safe_name(run_id, 40)}-{digest}"
        work = self.settings.work_path
        work.mkdir(parents=True, exist_ok=True)
        for old in work.glob(f"{prefix}.*"):
            if old not in _ACTIVE and not _pid_alive(old.name.rsplit(".", 2)[-2]):
                shutil.rmtree(old, ignore_errors=True)
        run_dir = work / f"{prefix}.{os.getpid()}.{next(_ATTEMPTS)}"
        run_dir.mkdir()
        _ACTIVE.add(run_dir)
        return run_dir


# Attempt directories in use by this process; a directory of a live pid that is not ours is left alone.
_ACTIVE: set[Path] = set()
_ATTEMPTS = itertools.count(1)


_REMOVING: set[asyncio.Future[None]] = set()


def remove_later(path: Path) -> None:
    """Delete a finished run's directory in a thread, off the run's critical path: the result goes
    back to Temporal while the files go (a clone took 130-160 ms to delete on a loaded machine).
    What a crash leaves half-deleted is swept by the next attempt of the same run or by tmp cleanup."""
    future = asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, path, True)
    _REMOVING.add(future)
    future.add_done_callback(_REMOVING.discard)


def _pid_alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # ours but not active: an attempt of this process that has ended
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
