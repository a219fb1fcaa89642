# ruff: noqa: F811 - pytest fixtures imported from implement_support are redefined as parameters
"""ImplementIssue re-checks its authority too: it never pushes to a branch a protection rule covers
(the agent would push with its own rights), and says so in Jira, before any agent run."""

from __future__ import annotations

import uuid

import pytest

from contracts.ids import implement_id
from standins.gitlab import AccessEntry
from tests.flows.helpers import wait_workflow
from tests.flows.implement_support import (  # noqa: F401 (fixtures)
    REPO,
    agent_writes,
    jira,
    jira_project,
    jira_settings,
    mrs_of,
    svc_repo,
)


@pytest.fixture
def settings_overrides(jira, jira_project) -> dict:
    return jira_settings(jira, jira_project)


async def test_implementation_never_pushes_to_a_protected_agent_branch(stack, jira, jira_project, svc_repo):
    stack.gitlab.protect_branch(REPO, "agent/*", push=[AccessEntry(30)])
    key = jira.create_issue(jira_project, "Add multiplication", "Multiply.", status="AI Ready")
    stack.model.brain.brain.when(
        *agent_writes(
            {"mul.py": "def mul(a, b):\n    return a * b\n"}, summary="Added mul.", subject="add mul"
        ),
        tool_offered="implementer-report_implementation",
    )
    start = len(stack.gitlab.push_log)
    await stack.client.execute_workflow(
        "PollJira", id=f"poll-jira-test-{uuid.uuid4().hex[:8]}", task_queue=stack.settings.temporal_task_queue
    )
    await wait_workflow(stack.client, implement_id(key), timeout=120)
    assert not [p for p in stack.gitlab.push_log[start:] if p.branch.startswith("agent/")]
    assert not mrs_of(stack.gitlab) and not stack.model.requests  # refused before the agent ran
    bodies = " ".join(str(c.body) for c in jira.comments(key))
    assert "is protected" in bodies and "only pushes to unprotected branches" in bodies
