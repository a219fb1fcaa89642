"""One agent task on its clone: the task kind's runner, with the sandbox every process goes through.

The local executor (a bubblewrap `ProcessSandbox` per process) and the Job runner (the pod is the
sandbox: `JobContainer`) both call `run_task`, so the two executors cannot drift. Each task kind has
its own module; `RUNNERS` maps the kind to it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from contracts.settings import Settings
from executors.process_sandbox import Sandbox
from executors.run_discussion import run_discussion
from executors.run_implement import run_implement
from executors.run_plan import run_plan
from executors.run_review import run_review
from executors.tasks import AgentResult, AgentTask

Runner = Callable[..., Awaitable[AgentResult]]
RUNNERS: dict[str, Runner] = {
    "review": run_review,
    "discussion": run_discussion,
    "implement": run_implement,
    "plan": run_plan,
}


async def run_task(
    task: AgentTask,
    repo: Path,
    settings: Settings,
    *,
    sandbox: Sandbox,
    traceparent: str | None = None,
) -> AgentResult:
    runner = RUNNERS.get(task.kind)
    if runner is None:
        raise ValueError(f"no runner for agent task kind {task.kind!r}")
    started = time.monotonic()
    result = await runner(task, repo, settings, traceparent, sandbox)
    if not result.duration_s:
        result.duration_s = round(time.monotonic() - started, 3)
    return result
