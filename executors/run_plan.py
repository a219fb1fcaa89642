"""The plan task: the agent reads the target branch with read-only tools and proposes a plan
(approach, files, tests, risks, open questions) through `planner-report_plan`. No patch, no tests:
nothing it does can change the repository, and the plan is only text for a person to approve."""

from __future__ import annotations

from pathlib import Path

from contracts.settings import Settings
from core.implement_prompt import plan_prompt
from executors.copilot_cli import CopilotRun, run_copilot
from executors.instructions import instructions_at
from executors.process_sandbox import Sandbox
from executors.tasks import AgentResult, PlanTask


async def run_plan(
    task: PlanTask, repo: Path, settings: Settings, traceparent: str | None, sandbox: Sandbox
) -> AgentResult:
    target = task.repo.branches[0] if task.repo.branches else task.repo.head_sha[:12]
    prompt = plan_prompt(
        issue_key=task.issue_key,
        project_path=task.project_path,
        target_branch=target,
        summary=task.summary,
        description=task.description,
        criteria=task.criteria,
        instructions=instructions_at(repo, task.repo.head_sha, []),
        previous_plan=task.previous_plan,
        feedback=task.feedback,
    )
    run = CopilotRun.for_task(
        settings,
        task,
        prompt=prompt,
        workdir=repo,
        kind="plan",
        traceparent=traceparent,
        sandbox=sandbox,
    )
    outcome = await run_copilot(run)
    return AgentResult(
        kind="plan",
        reports=outcome.reports,
        final_message=outcome.final_message[:20_000],
        usage=outcome.usage,
        duration_s=outcome.duration_s,
        prompt_chars=len(prompt),
    )
