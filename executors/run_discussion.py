"""The discussion task inside the sandbox: show the MR, its diff and the thread, run the agent, and
hand back what it changed as one bounded binary patch against the head it started from.

The sandbox never commits or pushes (it holds no credential): the worker applies the patch to a
fresh clone and pushes (activities/discussion_push.py).
"""

from __future__ import annotations

from pathlib import Path

from contracts.settings import Settings
from core.discussion_prompt import ThreadEntry, discussion_prompt
from executors.copilot_cli import CopilotRun, run_copilot
from executors.git_repo import git
from executors.instructions import instructions_at
from executors.review_diff import select_review_diff
from executors.tasks import AgentResult, DiscussionTask

MAX_PATCH_BYTES = 2 * 1024 * 1024
PATCH_TIMEOUT_S = 120


def working_patch(repo: Path, head_sha: str) -> tuple[str | None, bool]:
    """(patch, too_large): every change in the work tree, committed or not, against `head_sha`.

    `git add -A` respects the repository's .gitignore, so build output and caches stay out. When a
    changed text file is not UTF-8, the patch is made again with every file marked binary (in
    .git/info/attributes, which outranks the tree's .gitattributes), so the result is always a str.
    """
    git(repo, "add", "-A", timeout=PATCH_TIMEOUT_S)
    args = ("diff", "--cached", "--binary", "--no-color", "--no-ext-diff", head_sha)
    try:
        patch = git(repo, *args, timeout=PATCH_TIMEOUT_S)
    except UnicodeDecodeError:
        attributes = repo / ".git" / "info" / "attributes"
        attributes.parent.mkdir(parents=True, exist_ok=True)
        attributes.write_text("* binary\n")
        patch = git(repo, *args, timeout=PATCH_TIMEOUT_S)
    if not patch.strip():
        return None, False
    if len(patch.encode()) > MAX_PATCH_BYTES:
        return None, True
    return patch, False


async def run_discussion(
    task: DiscussionTask, repo: Path, settings: Settings, traceparent: str | None
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
    )
    run = CopilotRun.from_settings(
        settings,
        prompt=prompt,
        workdir=repo,
        kind="discussion",
        write_access=task.may_push,
        traceparent=traceparent,
    )
    outcome = await run_copilot(run)
    patch, too_large = working_patch(repo, head) if task.may_push else (None, False)
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
