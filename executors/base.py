"""The agent-run interface every flow uses; `TASK_EXECUTOR` picks the implementation."""

from __future__ import annotations

import re
from typing import Protocol

from contracts.settings import Settings, TaskExecutor
from executors.tasks import AgentResult, AgentTask


class AgentExecutor(Protocol):
    async def run(self, task: AgentTask, *, run_id: str, traceparent: str | None = None) -> AgentResult:
        """Prepare the clone, run the agent on it, return its result. `run_id` is stable across
        retries of one activity, so an executor can find (and not repeat) its earlier attempt."""
        ...


def safe_name(run_id: str, limit: int = 63) -> str:
    """A filesystem- and DNS-1123-safe rendering of a run ID (lower case, [a-z0-9-])."""
    name = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    return name[:limit].rstrip("-") or "run"


def make_executor(settings: Settings) -> AgentExecutor:
    if settings.task_executor == TaskExecutor.KUBERNETES:
        from executors.kubernetes import KubernetesExecutor

        return KubernetesExecutor(settings)
    from executors.local import LocalExecutor

    return LocalExecutor(settings)
