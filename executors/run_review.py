"""The review task inside the sandbox: select the diff, build the prompt, run the reviewer."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from contracts.settings import Settings
from core import prompts
from core.prompts import Persona
from executors.copilot_cli import CopilotRun, run_copilot
from executors.instructions import instructions_at
from executors.process_sandbox import Sandbox
from executors.repo_config import trusted_repo_config
from executors.review_diff import select_review_diff
from executors.tasks import AgentResult, ReviewScope, ReviewTask


async def run_review(
    task: ReviewTask, repo: Path, settings: Settings, traceparent: str | None, sandbox: Sandbox
) -> AgentResult:
    # The diff, the instructions, the skills and the prompt are git subprocesses and file work: in a
    # thread, so the worker's event loop (the model proxy of every other run, their heartbeats and
    # output) does not stall while a bundle's dozens of `git` calls run (bench/bench_review_overhead.py).
    with contextlib.ExitStack() as cleanup:
        prepared = await asyncio.to_thread(_prepare, task, repo, settings, cleanup)
        if isinstance(prepared, AgentResult):
            return prepared
        prompt, scope, options = prepared
        run = CopilotRun.for_task(
            settings,
            task,
            **options,
            prompt=prompt,
            workdir=repo,
            kind="review",
            traceparent=traceparent,
            sandbox=sandbox,
        )
        try:
            outcome = await run_copilot(run)
        finally:
            await asyncio.to_thread(cleanup.close)
    return AgentResult(
        kind="review",
        reports=outcome.reports,
        final_message=outcome.final_message[:20_000],
        usage=outcome.usage,
        duration_s=outcome.duration_s,
        prompt_chars=len(prompt),
        scope=scope,
    )


def _prepare(
    task: ReviewTask, repo: Path, settings: Settings, cleanup: contextlib.ExitStack
) -> AgentResult | tuple[str, ReviewScope, dict[str, Any]]:
    """The prompt, the scope and the run's options (their HOME tree removed by `cleanup`), or the
    result when there is nothing to review."""
    selected = select_review_diff(
        repo,
        base_sha=task.base_sha,
        head_sha=task.repo.head_sha,
        since_sha=task.since_sha,
        exclude=task.exclude,
        max_lines=task.max_diff_lines,
        only=task.files,
    )
    scope = selected.scope
    if scope.mode == "nothing" or not (scope.reviewed_files or scope.partial):
        return AgentResult(kind="review", scope=scope)
    scope_line = (
        f"only the commits since the last review, {selected.from_sha[:8]}..{task.repo.head_sha[:8]}; "
        "the rest of the merge request was reviewed before and is context"
        if scope.mode == "incremental"
        else f"the whole merge request, {task.base_sha[:8]}..{task.repo.head_sha[:8]}"
    )
    if task.bundle_note:
        scope_line += f"; {task.bundle_note}"
    prompt = prompts.review_prompt(
        project_path=task.project_path,
        mr_iid=task.mr_iid,
        head_sha=task.repo.head_sha,
        scope_line=scope_line,
        title=task.title,
        description=task.description,
        commit_messages=task.commit_messages,
        prior_threads=[t.model_dump() for t in task.prior_threads],
        dismissed=[d.model_dump() for d in task.dismissed],
        skipped=[f"{s.path}: {s.reason}" for s in [*scope.skipped, *scope.partial]],
        instructions=instructions_at(repo, task.base_sha, selected.changed_paths),
        diff=selected.text,
        persona=Persona.from_settings(settings, "review"),
        learnings=[n.model_dump() for n in task.learnings],
    )
    options = cleanup.enter_context(
        trusted_repo_config(repo, task.base_sha, "review", settings.review_custom_agent)
    )
    return prompt, scope, options
