"""The discussion task inside the sandbox: show the MR, its diff and the thread, run the agent, and
hand back what it changed as one bounded binary patch against the head it started from.

The sandbox never commits or pushes (it holds no credential): the patch is collected after the
agent's sandbox is gone (executors/agent_patch.py), and the worker applies it to a fresh clone and
pushes (activities/discussion_push.py).
"""

from __future__ import annotations

from pathlib import Path

from contracts.settings import Settings
from core.discussion_prompt import ThreadEntry, discussion_prompt
from core.prompts import Persona
from executors.agent_patch import collect_patch
from executors.copilot_cli import CopilotRun, run_copilot
from executors.instructions import instructions_at
from executors.process_sandbox import Sandbox
from executors.repo_config import trusted_repo_config
from executors.review_diff import select_review_diff
from executors.tasks import AgentResult, DiscussionTask

MAX_PATCH_BYTES = 2 * 1024 * 1024


async def run_discussion(
    task: DiscussionTask, repo: Path, settings: Settings, traceparent: str | None, sandbox: Sandbox
) -> AgentResult:
    head = task.repo.head_sha
    selected = select_review_diff(
        repo,
        base_sha=task.base_sha,
        head_sha=head,
        since_sha=None,
        exclude=task.exclude,
        max_lines=task.max_diff_lines,
    )
    skipped = f"; not shown: {len(selected.scope.skipped)} files" if selected.scope.skipped else ""
    thread = [
        ThreadEntry(t.get("author", ""), t.get("body", ""), t.get("by_agent") == "yes") for t in task.thread
    ]
    prompt = discussion_prompt(
        project_path=task.project_path,
        mr_iid=task.mr_iid,
        head_sha=head,
        title=task.title,
        description=task.description,
        diff=selected.text,
        diff_scope=f"{task.base_sha[:8]}..{head[:8]}{skipped}",
        thread=thread,
        request=task.request,
        author=task.author,
        position=task.position,
        may_push=task.may_push,
        no_push_reason=task.no_push_reason,
        own_finding_thread_id=task.own_finding_thread_id,
        instructions=instructions_at(repo, task.base_sha, selected.changed_paths),
        persona=Persona.from_settings(settings, "discussion"),
    )
    with trusted_repo_config(repo, task.base_sha, "discussion", settings.discussion_custom_agent) as options:
        run = CopilotRun.for_task(
            settings,
            task,
            **options,
            prompt=prompt,
            workdir=repo,
            kind="discussion",
            write_access=task.may_push,
            traceparent=traceparent,
            sandbox=sandbox,
        )
        outcome = await run_copilot(run)
    # The agent's sandbox is gone; the patch is read in a new one (its .git is the agent's to edit).
    patch, too_large = (
        await collect_patch(sandbox, repo, head, max_bytes=MAX_PATCH_BYTES)
        if task.may_push
        else (None, False)
    )
    return AgentResult(
        kind="discussion",
        reports=outcome.reports,
        final_message=outcome.final_message[:20_000],
        usage=outcome.usage,
        duration_s=outcome.duration_s,
        prompt_chars=len(prompt),
        patch=patch,
        patch_too_large=too_large,
    )
