"""The implement task inside the sandbox: run the agent with write access, then measure the tests
ourselves, then hand back the change as a bounded binary patch.

The patch is taken before the tests run, so whatever the test run writes (caches, reports) is not
part of the change; build and cache directories the agent's own test runs left behind are excluded.
Committing and pushing happen in the worker, which holds the GitLab token; the agent never does.
"""

from __future__ import annotations

from pathlib import Path

from contracts.settings import Settings
from core.implement_prompt import implement_prompt
from executors.copilot_cli import CopilotRun, run_copilot
from executors.git_repo import git
from executors.instructions import instructions_at
from executors.tasks import AgentResult, ImplementTask
from executors.test_evidence import discover, run_tests

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


def collect_patch(repo: Path) -> str:
    """The working tree's change against HEAD as a binary patch ("" when there is none)."""
    excludes = [f":(exclude,glob){pattern}" for pattern in ARTIFACTS]
    git(repo, "add", "--all", "--", ".", *excludes)
    return git(repo, "diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "HEAD")


async def run_implement(
    task: ImplementTask, repo: Path, settings: Settings, traceparent: str | None
) -> AgentResult:
    command, how = discover(repo, task.test_command)
    prompt = implement_prompt(
        issue_key=task.issue_key,
        project_path=task.project_path,
        target_branch=task.repo.branches[0] if task.repo.branches else task.repo.head_sha[:12],
        summary=task.summary,
        description=task.description,
        instructions=instructions_at(repo, task.repo.head_sha, []),
        test_command=command,
    )
    run = CopilotRun.from_settings(
        settings,
        prompt=prompt,
        workdir=repo,
        kind="implement",
        write_access=True,
        traceparent=traceparent,
    )
    outcome = await run_copilot(run)
    patch = collect_patch(repo)
    too_large = len(patch.encode()) > MAX_PATCH_BYTES
    tests = await run_tests(repo, command, how) if patch and not too_large else None
    return AgentResult(
        kind="implement",
        reports=outcome.reports,
        final_message=outcome.final_message[:20_000],
        usage=outcome.usage,
        duration_s=outcome.duration_s,
        prompt_chars=len(prompt),
        patch=None if too_large else (patch or None),
        patch_too_large=too_large,
        tests=tests,
    )
