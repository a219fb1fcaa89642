"""The implement task: run the agent with write access, hand back its change as a bounded binary
patch, and measure the tests ourselves on a tree the agent never touched.

Before the agent starts, the test command is discovered on the target branch and a second checkout
of it is made (never mounted into the agent's sandbox). After the agent's sandbox is gone the patch
is collected in a new sandbox (executors/agent_patch.py), build and cache directories the agent's own
test runs left behind excluded, then applied to that checkout and tested in another sandbox without
network (executors/test_evidence.py). Committing and pushing happen in the worker, which holds the
GitLab token; the agent never does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from contracts.settings import Settings
from core.implement_prompt import fix_prompt, implement_prompt
from core.prompts import Persona
from executors.agent_patch import collect_patch
from executors.copilot_cli import CopilotRun, run_copilot
from executors.instructions import instructions_at
from executors.process_sandbox import Sandbox
from executors.repo_config import trusted_repo_config
from executors.tasks import AgentResult, ImplementTask
from executors.test_evidence import discover, measure, prepare_tree

MAX_PATCH_BYTES = 5 * 1024 * 1024
ARTIFACTS = (
    "**/__pycache__/**",
    "**/*.pyc",
    "**/.pytest_cache/**",
    "**/.mypy_cache/**",
    "**/.ruff_cache/**",
    "**/node_modules/**",
    "**/.coverage",
)


async def run_implement(
    task: ImplementTask, repo: Path, settings: Settings, traceparent: str | None, sandbox: Sandbox
) -> AgentResult:
    head = task.repo.head_sha
    target = task.repo.branches[0] if task.repo.branches else head[:12]
    command, how = discover(repo, task.test_command)  # from the target branch, before the agent
    tree = (
        await asyncio.to_thread(prepare_tree, repo, repo.parent / f"{repo.name}-evidence", head)
        if sandbox.measures_tests
        else None  # a Kubernetes Job: its `tests` container measures (executors/job_tests.py)
    )
    if task.findings:  # a fix round of the review loop on the agent's own MR
        prompt = fix_prompt(
            issue_key=task.issue_key,
            project_path=task.project_path,
            round_=task.review_round,
            findings=[f.model_dump() for f in task.findings],
            # The MR branch is the agent's own: instructions only from the target branch.
            instructions=instructions_at(repo, task.config_sha, []) if task.config_sha else "",
            test_command=command,
            persona=Persona.from_settings(settings, "coding"),
        )
    else:
        prompt = implement_prompt(
            issue_key=task.issue_key,
            project_path=task.project_path,
            target_branch=target,
            summary=task.summary,
            description=task.description,
            instructions=instructions_at(repo, task.repo.head_sha, []),
            test_command=command,
            plan=task.plan,
            criteria=task.criteria,
            persona=Persona.from_settings(settings, "coding"),
        )
    trusted = task.config_sha or head  # never the agent's own branch (see ImplementTask.config_sha)
    with trusted_repo_config(repo, trusted, "implement", settings.coding_custom_agent) as options:
        run = CopilotRun.for_task(
            settings,
            task,
            **options,
            prompt=prompt,
            workdir=repo,
            kind="implement",
            write_access=True,
            traceparent=traceparent,
            sandbox=sandbox,
        )
        outcome = await run_copilot(run)
    patch, too_large = await collect_patch(sandbox, repo, head, max_bytes=MAX_PATCH_BYTES, excludes=ARTIFACTS)
    tests = (
        await measure(sandbox, tree, patch, command, how, base_sha=head, base_name=f"target branch {target}")
        if patch and tree is not None
        else None
    )
    return AgentResult(
        kind="implement",
        reports=outcome.reports,
        final_message=outcome.final_message[:20_000],
        usage=outcome.usage,
        duration_s=outcome.duration_s,
        prompt_chars=len(prompt),
        patch=patch,
        patch_too_large=too_large,
        tests=tests,
    )
