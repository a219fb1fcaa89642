"""The draft MR's title and description: the Jira link, the agent's summary and the test evidence
the service measured itself ("tests not run" without a command, "failing" when they fail; never
"passing" on the model's word), with which command ran, where it came from and on which tree."""

from __future__ import annotations

from typing import Any

from contracts.agent_tasks import TestEvidence
from core import markers
from core.outbound_text import model_text
from core.prompts import fence_for
from core.sanitize import strip_unsafe

IMPLEMENT = "implement"
MAX_AGENT_SUMMARY = 4000
MAX_TITLE = 200


def evidence_verdict(tests: TestEvidence | None) -> str:
    if tests is None or not tests.ran:
        return "tests not run"
    if tests.exit_code is None:
        return "failing (timed out)"
    return "passing" if tests.exit_code == 0 else "failing"


def _counts(tests: TestEvidence) -> str:
    parts = []
    if tests.passed is not None:
        parts.append(f"{tests.passed} passed")
    if tests.failed is not None:
        parts.append(f"{tests.failed} failed")
    return ", ".join(parts) or "counts not reported by the runner"


def evidence_line(tests: TestEvidence | None) -> str:
    """One line for commit messages and Jira comments."""
    verdict = evidence_verdict(tests)
    if tests is None or not tests.ran or tests.command is None:
        reason = f" ({tests.discovered})" if tests is not None and tests.discovered else ""
        return f"Tests: {verdict}{reason}"
    code = "timeout" if tests.exit_code is None else str(tests.exit_code)
    return (
        f"Tests: {verdict}: `{strip_unsafe(tests.command)[:200]}` exit {code}, {_counts(tests)}, "
        f"{tests.duration_s:.1f} s"
    )


def mr_title(issue_key: str, commit_title: str, *, draft: bool) -> str:
    title = strip_unsafe(commit_title).replace("\n", " ").strip()[:MAX_TITLE]
    return f"Draft: {title}" if draft else title


def _evidence_section(tests: TestEvidence | None, tests_note: str) -> str:
    if tests is None and tests_note:
        return f"**{strip_unsafe(tests_note)}** (as recorded in the commit message)"
    verdict = evidence_verdict(tests)
    if tests is None or not tests.ran or tests.command is None:
        why = tests.discovered if tests is not None and tests.discovered else "the agent made no change"
        return f"**{verdict}**: {strip_unsafe(why)}."
    code = "killed after the time limit" if tests.exit_code is None else str(tests.exit_code)
    tail = strip_unsafe(tests.output_tail).rstrip()
    fence = fence_for(tail)
    origin = strip_unsafe(tests.discovered)
    if tests.source:  # where the command came from: never the agent's change
        origin += ", read from the target branch before the agent ran"
    lines = [
        f"**{verdict}** (run by the service in a new sandbox without network, after the agent's had ended)",
        "",
        "| | |",
        "|---|---|",
        f"| Command | `{strip_unsafe(tests.command)[:300]}` ({origin}) |",
    ]
    if tests.source:
        lines.append(f"| Tree | {strip_unsafe(tests.source)[:300]} |")
    if tests.harness_reset:
        reset = ", ".join(f"`{strip_unsafe(p)[:200]}`" for p in tests.harness_reset[:20])
        lines.append(f"| Harness | the target branch's: the change's edits to {reset} were not used |")
    lines += [
        f"| Exit code | {code} |",
        f"| Result | {_counts(tests)} |",
        f"| Duration | {tests.duration_s:.1f} s |",
    ]
    if tail:
        lines += [
            "",
            "<details><summary>Output (tail)</summary>",
            "",
            f"{fence}text",
            tail,
            fence,
            "</details>",
        ]
    return "\n".join(lines)


def render_description(
    *,
    issue_key: str,
    issue_url: str,
    issue_summary: str,
    agent_summary: str,
    tests: TestEvidence | None,
    tests_note: str,
    workflow_id: str,
    criteria: list[Any] | None = None,
    commit_sha: str = "",
    plan_note: str = "",
) -> tuple[str, str]:
    """(text, marker) of the MR description. `criteria`: `contracts.implement.CriterionResult`s."""
    summary = model_text(agent_summary, MAX_AGENT_SUMMARY) or "(the agent gave no summary)"
    body = "\n".join(
        [
            f"Implements [{issue_key}]({issue_url}): {strip_unsafe(issue_summary)[:300]}",
            "",
            "## What the agent did",
            summary,
            "",
            "## Tests",
            _evidence_section(tests, tests_note),
            "",
            "## Acceptance criteria",
            criteria_section(criteria, commit_sha),
            "",
            *([plan_note, ""] if plan_note else []),
            "---",
            f"Opened by gitlab-copilot-agent (workflow `{workflow_id}`). Review it like any other change; "
            "it stays a draft until a human marks it ready.",
        ]
    )
    return body, markers.marker(IMPLEMENT, issue=issue_key, workflow=workflow_id)


def criteria_section(criteria: list[Any] | None, commit_sha: str = "") -> str:
    """Each criterion mapped to its evidence, or "not covered" with the reason; never a bare claim."""
    if criteria is None:
        return "Not checked (the result was recovered from the pushed commit)."
    if not criteria:
        return (
            'None found in the issue (looked for an "Acceptance criteria" list, Given/When/Then '
            "scenarios and checklists)."
        )
    commit = f" in `{commit_sha[:12]}`" if commit_sha else ""
    rows = ["| # | Criterion | Evidence |", "|---|---|---|"]
    for number, item in enumerate(criteria, 1):
        text = strip_unsafe(item.criterion).replace("|", "\\|").replace("\n", " ")[:300]
        tests = ", ".join(f"`{strip_unsafe(t)[:200]}`" for t in item.tests)
        if item.covered:
            evidence = f"✅ covered by {tests} (passing in the service's run){commit}"
        else:
            reason = strip_unsafe(item.reason).replace("|", "\\|").replace("\n", " ")[:300]
            evidence = f"❌ not covered: {reason}" + (f" (named: {tests})" if tests else "")
        rows.append(f"| {number} | {text} | {evidence} |")
    covered = sum(1 for item in criteria if item.covered)
    return f"{covered} of {len(criteria)} covered by a passing test.\n\n" + "\n".join(rows)
