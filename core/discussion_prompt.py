"""The prompt of an MRDiscussion run: the MR, its diff, the thread, and the note to answer last.

The note comes last on purpose: it is what the agent must answer, and a model (and the demo model,
which quotes the last paragraph) reads the end of a long prompt most reliably. Every piece of text a
human or an earlier model run wrote goes through `untrusted_block`; the template is filled with
`string.Template` via `core.prompts.render`, so inserted text cannot smuggle placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.prompts import MAX_DESCRIPTION, MAX_DIFF_CHARS, Persona, fence_for, render
from core.sanitize import strip_unsafe, truncate, untrusted_block

MAX_REQUEST_CHARS = 8000
MAX_THREAD_NOTE_CHARS = 2000
MAX_THREAD_NOTES = 30


@dataclass(frozen=True)
class ThreadEntry:
    author: str
    body: str
    by_agent: bool = False


def _change_step(may_push: bool, no_push_reason: str) -> str:
    if may_push:
        return (
            "If the request asks for a code change, make it with your file tools in the working "
            "directory (run the tests with bash when the repository has them). Do not commit, push, "
            "rebase or switch branches: the service commits and pushes what you change. Then call "
            "`discussion-report_change` once with `commit_type` (fix, feat, test, docs, refactor, "
            "chore, ...) and a `summary` whose first line, at most 70 characters, becomes the commit "
            "subject. Change nothing when the request is only a question."
        )
    reason = strip_unsafe(no_push_reason) or "pushing is not allowed for this request"
    return (
        f"You cannot change files here ({reason}). If the request asks for a code change, describe "
        "in your reply exactly what you would change (a short diff or snippet) and say why you did "
        "not push it."
    )


def _resolution_step(own_finding_thread_id: str | None) -> str:
    if not own_finding_thread_id:
        return ""
    return (
        f"   This thread is one of your own review findings (thread_id `{own_finding_thread_id}`). "
        "If the request says it is fixed or done, check the current code and call "
        "`discussion-report_resolution` with that `thread_id`, `status` resolved (the problem is "
        "gone), partial or not_addressed, and a one-sentence `reply`; when it is not fixed, say in "
        "your answer what is still missing.\n"
    )


def _thread(entries: list[ThreadEntry]) -> str:
    shown = entries[-MAX_THREAD_NOTES:]
    lines = []
    if len(entries) > len(shown):
        lines.append(f"({len(entries) - len(shown)} earlier notes not shown)")
    for entry in shown:
        who = strip_unsafe(entry.author)[:100] or "unknown"
        label = "your_earlier_note" if entry.by_agent else "thread_note"
        heading = f"- {who}{' (you, earlier)' if entry.by_agent else ''}:"
        lines.append(f"{heading}\n{untrusted_block(label, entry.body, MAX_THREAD_NOTE_CHARS)}")
    return "\n".join(lines) or "(this note starts the thread)"


def discussion_prompt(
    *,
    project_path: str,
    mr_iid: int,
    head_sha: str,
    title: str,
    description: str,
    diff: str,
    diff_scope: str,
    thread: list[ThreadEntry],
    request: str,
    author: str,
    position: str = "",
    may_push: bool = False,
    no_push_reason: str = "",
    own_finding_thread_id: str | None = None,
    instructions: str = "",
    persona: Persona | None = None,
) -> str:
    who = strip_unsafe(author)[:100] or "the person who asked"
    tools_line = (
        "You may read, edit and create files and run commands in it."
        if may_push
        else "You may read any file of it (view, grep, glob); you cannot change files or run commands."
    )
    return render(
        "discussion",
        persona=(persona or Persona("discussion")).render(),
        project_path=strip_unsafe(project_path),
        mr_iid=str(mr_iid),
        head_sha=head_sha,
        tools_line=tools_line,
        change_step=_change_step(may_push, no_push_reason),
        resolution_step=_resolution_step(own_finding_thread_id),
        author=f"@{who}" if author else who,
        instructions=f"\n# The repository's own instructions\n{instructions}\n" if instructions else "",
        title_block=untrusted_block("mr_title", title, 500),
        description_block=untrusted_block("mr_description", description, MAX_DESCRIPTION),
        diff_scope=strip_unsafe(diff_scope),
        diff=truncate(strip_unsafe(diff), MAX_DIFF_CHARS),
        fence=fence_for(diff),
        position_line=f" (inline, on `{strip_unsafe(position)[:300]}`)" if position else "",
        thread_block=_thread(thread),
        request_block=untrusted_block("request", request, MAX_REQUEST_CHARS),
    )
