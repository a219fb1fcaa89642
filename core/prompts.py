"""Prompt building: one template per task under `core/prompt_templates/`, filled with
`string.Template`, which substitutes once and never evaluates what it inserts, so untrusted text
cannot smuggle placeholders. Every untrusted value goes through `untrusted_block` (labelled,
unsafe characters stripped, bounded)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from string import Template

from core.sanitize import strip_unsafe, truncate, untrusted_block

TEMPLATES = Path(__file__).parent / "prompt_templates"
MAX_DESCRIPTION = 8000
MAX_COMMITS_CHARS = 4000
MAX_DIFF_CHARS = 400_000


@cache
def template(name: str) -> Template:
    return Template((TEMPLATES / f"{name}.md").read_text())


def bullet_list(items: list[str], empty: str) -> str:
    return "\n".join(f"- {item}" for item in items) if items else empty


def fence_for(text: str) -> str:
    """A backtick fence longer than any backtick run inside `text`, so the block cannot be closed early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def render(name: str, **values: str) -> str:
    return template(name).substitute(**values)


def review_prompt(
    *,
    project_path: str,
    mr_iid: int,
    head_sha: str,
    scope_line: str,
    title: str,
    description: str,
    commit_messages: list[str],
    prior_threads: list[dict],
    dismissed: list[dict],
    skipped: list[str],
    instructions: str,
    diff: str,
) -> str:
    prior = [
        f"thread_id `{t['thread_id']}` at {t.get('file') or 'general'}:{t.get('line') or '-'}"
        f"{' (outdated position: the code moved)' if t.get('outdated') else ''}: "
        + untrusted_block("earlier_finding", t.get("title", "") + "\n" + t.get("body", ""), 1500)
        + "".join("\n  " + untrusted_block("human_reply", reply, 800) for reply in t.get("human_replies", []))
        for t in prior_threads
    ]
    dismissed_items = [
        f"{d.get('file') or 'general'}:{d.get('line') or '-'}: "
        + untrusted_block("dismissed", d.get("title", ""), 300)
        for d in dismissed
    ]
    resolution_step = (
        'For each thread under "Earlier feedback", check the current code and call '
        "`reviewer-report_resolution` with its `thread_id` and `status`: resolved (the problem is gone), "
        "partial (improved, not fully fixed), or not_addressed; `reply` says briefly why."
        if prior_threads
        else "There is no earlier feedback to judge."
    )
    commits = untrusted_block("commit_messages", "\n---\n".join(commit_messages), MAX_COMMITS_CHARS)
    return render(
        "review",
        project_path=strip_unsafe(project_path),
        mr_iid=str(mr_iid),
        head_sha=head_sha,
        scope_line=scope_line,
        resolution_step=resolution_step,
        instructions=f"\n# The repository's own review instructions\n{instructions}\n"
        if instructions
        else "",
        title_block=untrusted_block("mr_title", title, 500),
        description_block=untrusted_block("mr_description", description, MAX_DESCRIPTION),
        commits_block=commits if commit_messages else "(none)",
        prior_block="\n".join(prior) or "(none)",
        dismissed_block="\n".join(dismissed_items) or "(none)",
        skipped_block=bullet_list(skipped, "(none)"),
        diff=truncate(strip_unsafe(diff), MAX_DIFF_CHARS),
        fence=fence_for(diff),
    )
