"""The coding prompt of ImplementIssue, from `core/prompt_templates/implement.md`.

The issue's summary and description (already converted from Atlassian Document Format to markdown)
are untrusted: labelled, stripped of unsafe characters and bounded by `untrusted_block`.
"""

from __future__ import annotations

from core.prompts import render
from core.sanitize import strip_unsafe, untrusted_block

MAX_SUMMARY = 500
MAX_DESCRIPTION = 12_000


def implement_prompt(
    *,
    issue_key: str,
    project_path: str,
    target_branch: str,
    summary: str,
    description: str,
    instructions: str,
    test_command: str | None,
) -> str:
    test_hint = (
        f"the project runs them with `{strip_unsafe(test_command)}`"
        if test_command
        else "find how the repository runs them"
    )
    return render(
        "implement",
        issue_key=issue_key,
        issue_key_lower=issue_key.lower(),
        project_path=strip_unsafe(project_path),
        target_branch=strip_unsafe(target_branch),
        test_hint=test_hint,
        instructions=f"\n# The repository's own instructions\n{instructions}\n" if instructions else "",
        summary_block=untrusted_block("jira_summary", summary, MAX_SUMMARY),
        description_block=untrusted_block(
            "jira_description", description or "(no description)", MAX_DESCRIPTION
        ),
    )
