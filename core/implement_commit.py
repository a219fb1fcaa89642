"""The agent's commit message, and the trailers by which a retried activity recognises its own push.

`Workflow-Run` is what makes a branch "ours": a retry of the same run finds it and does not push
again, while a later run for the same issue (the issue moved back to the trigger status) sees a
branch taken by someone else and picks the next free name (`-2`, `-3`, ...).
"""

from __future__ import annotations

import re

from core.sanitize import strip_unsafe

MAX_BRANCH_SUFFIX = 20
_TRAILER = re.compile(r"^(Jira-Issue|Workflow-Id|Workflow-Run): (\S+)$", re.MULTILINE)
_TESTS_LINE = re.compile(r"^Tests: .*$", re.MULTILINE)


def commit_title(issue_key: str, subject: str) -> str:
    clean = strip_unsafe(subject).replace("\n", " ").strip()
    # The model may have added a conventional prefix despite being told not to: keep one.
    clean = re.sub(r"^[a-z]+(\([^)]*\))?!?:\s*", "", clean) or "implement the issue"
    return f"feat({issue_key.lower()}): {clean}"[:200]


def commit_message(
    *, title: str, agent_summary: str, tests_line: str, issue_key: str, workflow_id: str, run_id: str
) -> str:
    body = strip_unsafe(agent_summary).strip()[:3000]
    return (
        f"{title}\n\n{body}\n\n{tests_line}\n\n"
        f"Jira-Issue: {issue_key}\nWorkflow-Id: {workflow_id}\nWorkflow-Run: {run_id}\n"
    )


def trailers(message: str) -> dict[str, str]:
    return dict(_TRAILER.findall(message))


def is_own_commit(message: str, issue_key: str, run_id: str) -> bool:
    found = trailers(message)
    return found.get("Jira-Issue") == issue_key and found.get("Workflow-Run") == run_id


def recovered_parts(message: str) -> tuple[str, str, str]:
    """(title, agent summary, tests line) from one of our commit messages."""
    title, _, rest = message.partition("\n\n")
    tests = _TESTS_LINE.search(rest)
    summary = rest[: tests.start()].strip() if tests else rest.split("\n\nJira-Issue:")[0].strip()
    return title.strip(), summary, tests.group(0) if tests else ""


def branch_candidates(issue_key: str) -> list[str]:
    base = f"agent/{issue_key.lower()}"
    return [base] + [f"{base}-{n}" for n in range(2, MAX_BRANCH_SUFFIX + 1)]
