"""The coding prompt of ImplementIssue, from `core/prompt_templates/implement.md`.

The issue's summary and description (already converted from Atlassian Document Format to markdown)
are untrusted: labelled, stripped of unsafe characters and bounded by `untrusted_block`.
"""

from __future__ import annotations

from core.prompts import Persona, render
from core.sanitize import strip_unsafe, untrusted_block

MAX_SUMMARY = 500
MAX_DESCRIPTION = 12_000
MAX_CRITERION = 500


def implement_prompt(
    *,
    issue_key: str,
    project_path: str,
    target_branch: str,
    summary: str,
    description: str,
    instructions: str,
    test_command: str | None,
    persona: Persona | None = None,
    plan: str = "",
    criteria: list[str] | None = None,
) -> str:
    test_hint = (
        f"the project runs them with `{strip_unsafe(test_command)}`"
        if test_command
        else "find how the repository runs them"
    )
    return render(
        "implement",
        persona=(persona or Persona("coding")).render(),
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
        plan_block=(
            "\n# The approved plan\nA person approved this plan (your own earlier proposal); follow it.\n"
            + untrusted_block("approved_plan", plan, MAX_DESCRIPTION)
            + "\n"
            if plan
            else ""
        ),
        criteria_block=_criteria_block(criteria or [], answer=True),
    )


def _criteria_block(criteria: list[str], *, answer: bool) -> str:
    if not criteria:
        return ""
    listed = "\n".join(f"{n}. {strip_unsafe(text)[:MAX_CRITERION]}" for n, text in enumerate(criteria, 1))
    how = (
        "In `report_implementation`, give one `criteria` entry per number: `addressed` with the test "
        "files that check it, or `not_covered` with the reason. Never claim a criterion without a test; "
        "the service checks the named tests against your change and its own test run."
        if answer
        else "Plan a test for each of them."
    )
    return (
        "\n# Acceptance criteria (from the issue; untrusted text)\n"
        + untrusted_block("acceptance_criteria", listed, MAX_DESCRIPTION)
        + f"\n{how}\n"
    )


def plan_prompt(
    *,
    issue_key: str,
    project_path: str,
    target_branch: str,
    summary: str,
    description: str,
    criteria: list[str],
    instructions: str,
    previous_plan: str = "",
    feedback: str = "",
    persona: Persona | None = None,
) -> str:
    revision = ""
    if previous_plan:
        revision = (
            "\n# This is a revision\nYour earlier plan was sent back with requested changes. Propose a "
            "revised plan that answers them.\n"
            + untrusted_block("previous_plan", previous_plan, MAX_DESCRIPTION)
            + "\n"
            + untrusted_block("requested_changes", feedback or "(no details given)", MAX_DESCRIPTION)
            + "\n"
        )
    return render(
        "plan",
        persona=(persona or Persona("coding")).render(),
        issue_key=issue_key,
        project_path=strip_unsafe(project_path),
        target_branch=strip_unsafe(target_branch),
        revision=revision,
        instructions=f"\n# The repository's own instructions\n{instructions}\n" if instructions else "",
        summary_block=untrusted_block("jira_summary", summary, MAX_SUMMARY),
        description_block=untrusted_block(
            "jira_description", description or "(no description)", MAX_DESCRIPTION
        ),
        criteria_block=_criteria_block(criteria, answer=False),
    )


def fix_prompt(
    *,
    issue_key: str,
    project_path: str,
    round_: int,
    findings: list[dict],
    instructions: str,
    test_command: str | None,
    persona: Persona | None = None,
) -> str:
    listed = "\n\n".join(
        f"thread_id `{f['thread_id']}` [{f.get('severity', 'minor')}] at {f.get('file') or 'general'}:"
        f"{f.get('line') or '-'}: {f.get('title', '')}\n{f.get('body', '')}"
        for f in findings
    )
    test_hint = (
        f"the project runs them with `{strip_unsafe(test_command)}`"
        if test_command
        else "find how the repository runs them"
    )
    return render(
        "fix_findings",
        persona=(persona or Persona("coding")).render(),
        issue_key=issue_key,
        project_path=strip_unsafe(project_path),
        round=str(round_),
        test_hint=test_hint,
        instructions=f"\n# The repository's own instructions\n{instructions}\n" if instructions else "",
        findings_block=untrusted_block("review_findings", listed, MAX_DESCRIPTION),
    )
