"""The review task inside the sandbox: select the diff, build the prompt, run the reviewer."""

from __future__ import annotations

from pathlib import Path

from contracts.settings import Settings
from core import prompts
from executors.copilot_cli import CopilotRun, run_copilot
from executors.instructions import instructions_at
from executors.process_sandbox import Sandbox
from executors.review_diff import select_review_diff
from executors.tasks import AgentResult, ReviewTask


async def run_review(
    task: ReviewTask, repo: Path, settings: Settings, traceparent: str | None, sandbox: Sandbox
) -> AgentResult:
    selected = select_review_diff(
        repo,
        base_sha=task.base_sha,
        head_sha=task.repo.head_sha,
        since_sha=task.since_sha,
        exclude=task.exclude,
        max_lines=task.max_diff_lines,
    )
    scope = selected.scope
    if scope.mode == "nothing" or not scope.reviewed_files:
        return AgentResult(kind="review", scope=scope)
    scope_line = (
        f"only the commits since the last review, {selected.from_sha[:8]}..{task.repo.head_sha[:8]}; "
        "the rest of the merge request was reviewed before and is context"
        if scope.mode == "incremental"
        else f"the whole merge request, {task.base_sha[:8]}..{task.repo.head_sha[:8]}"
    )
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
        skipped=[f"{s.path}: {s.reason}" for s in scope.skipped],
        instructions=instructions_at(repo, task.base_sha, selected.changed_paths),
        diff=selected.text,
    )
    run = CopilotRun.from_settings(
        settings, prompt=prompt, workdir=repo, kind="review", traceparent=traceparent, sandbox=sandbox
    )
    outcome = await run_copilot(run)
    return AgentResult(
        kind="review",
        reports=outcome.reports,
        final_message=outcome.final_message[:20_000],
        usage=outcome.usage,
        duration_s=outcome.duration_s,
        prompt_chars=len(prompt),
        scope=scope,
    )
