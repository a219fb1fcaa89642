# ruff: noqa: F811 - pytest fixtures imported from implement_support are redefined as parameters
"""ImplementIssue's plan gate end to end, on Jira Cloud and Data Center: the real Copilot CLI proposes
a plan (read-only tools, `planner-report_plan`), the service posts it on the issue and waits with
durable timers; a person decides with a Jira comment (authority re-checked in the activity), an
operator with a Temporal signal. Short timers stand in for the days a real wait takes; the wait
continues as new after a few checks, as a long one does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.jira_api import FAILED_LABEL
from contracts import temporal
from contracts.ids import implement_id
from contracts.slots import slots_id
from standins.jira.render import adf_to_text
from standins.model_server import Reply
from tests.flows.helpers import wait_workflow
from tests.flows.implement_support import (  # noqa: F401 (fixtures)
    MUL_TEST,
    agent_writes,
    file_at,
    jira,
    jira_project,
    jira_settings,
    mrs_of,
    svc_repo,
)

# Three to four agent runs each: on a loaded 2-core machine one takes up to a minute.
pytestmark = [pytest.mark.flow, pytest.mark.timeout(600)]

LEAD = "lead@example.com"
PASSER_BY = "casey.other@example.com"


@pytest.fixture
def settings_overrides(jira, jira_project) -> dict:
    jira.add_account(LEAD, "lead-token", "Lee Lead")
    jira.add_account(PASSER_BY, "other-token", "Casey Other")
    jira.add_role_member(jira_project, "Developers", LEAD)
    return {
        **jira_settings(jira, jira_project),
        "plan_approval": "required",
        "plan_approvers": "role:Developers,group:release-leads",
        "plan_poll_interval": 1,
        "plan_reminder_after": 3,
        "plan_expire_after": 3600,
        "plan_polls_per_run": 3,  # a long wait continues as new: here after 3 checks
    }


def texts(jira, key: str) -> list[str]:
    return [c.body if isinstance(c.body, str) else adf_to_text(c.body) for c in jira.comments(key)]


async def until(predicate, timeout: float = 90.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return value


def plan_turns(approach: str, tests: list[str]) -> list[Reply]:
    return [
        Reply.call(
            "planner-report_plan",
            approach=approach,
            files=["mul.py", "tests/test_mul.py"],
            tests=tests,
            risks=["none beyond the new function"],
            open_questions=[],
        ),
        Reply.text("Planned."),
    ]


def script(stack, *, revised: bool = False) -> None:
    brain = stack.model.brain.brain
    if revised:
        brain.when(
            *plan_turns(
                "Add `mul` and reject non-numbers.", ["tests/test_mul.py: mul(2, 3) == 6, mul('a', 1) raises"]
            ),
            prompt_contains="This is a revision",
        )
    brain.when(
        *plan_turns("Add `mul` in mul.py.", ["tests/test_mul.py: mul(2, 3) == 6"]),
        tool_offered="planner-report_plan",
    )
    brain.when(
        *agent_writes(
            {"mul.py": "def mul(a, b):\n    return a * b\n", "tests/test_mul.py": MUL_TEST},
            summary="Added `mul` as planned.",
            subject="add mul",
        ),
        tool_offered="implementer-report_implementation",
    )


async def start(stack, key: str) -> None:
    await stack.client.start_workflow(
        "ImplementIssue",
        {"issue_key": key},
        id=implement_id(key),
        task_queue=stack.settings.temporal_task_queue,
    )


async def runs_of(stack, key: str) -> list:
    return [w async for w in stack.client.list_workflows(f"WorkflowId = '{implement_id(key)}'")]


async def test_plan_waits_reminds_and_is_approved_by_a_developer(stack, jira, jira_project, svc_repo):
    key = jira.create_issue(jira_project, "Add multiplication", "Multiply two numbers.", status="AI Ready")
    script(stack)
    await start(stack, key)
    await until(lambda: any("Implementation plan (round 1)" in t for t in texts(jira, key)), what="the plan")
    plan = next(c.body for c in jira.comments(key) if "Implementation plan" in str(c.body))
    if jira.cloud:  # REST v3 with ADF: a real heading, inline code, a bullet list
        kinds = [node["type"] for node in plan["content"]]
        assert kinds[0] == "heading" and "bulletList" in kinds
        assert {"type": "code"} in [
            m for n in plan["content"] for c in n.get("content", []) for m in c.get("marks", [])
        ]
    else:  # REST v2 with wiki markup
        assert plan.startswith("h2. Implementation plan (round 1)") and "Add {{mul}} in mul.py." in plan
        assert "* tests/test_mul.py: mul(2, 3) == 6" in plan
    assert "tests/test_mul.py: mul(2, 3) == 6" in texts(jira, key)[0] and "approve" in texts(jira, key)[0]
    assert not mrs_of(stack.gitlab) and jira.issue(key).status == "In Progress"  # no code before approval

    # The wait as the Web UI shows it: search attribute and current details.
    handle = stack.client.get_workflow_handle(implement_id(key))
    await until(lambda: any("Reminder" in t for t in texts(jira, key)), what="the reminder")
    description = await handle.describe()
    assert description.typed_search_attributes.get(temporal.PLAN_APPROVAL) == "waiting"
    progress = await handle.query("progress")
    assert progress["step"].startswith("waiting for plan approval since ") and progress["plan_round"] == 1
    deadline = time.monotonic() + 60
    while len(await runs_of(stack, key)) < 2:  # the wait continued as new, state carried over
        assert time.monotonic() < deadline, "the wait never continued as new"
        await asyncio.sleep(0.5)

    jira.comment_as(key, "approve", LEAD)
    description = await wait_workflow(stack.client, implement_id(key), timeout=150)
    assert description.status == WorkflowExecutionStatus.COMPLETED
    result = await handle.result()
    assert result["status"] == "in_review" and result["plan_rounds"] == 1
    assert result["plan_approved_by"] == "Lee Lead" and result["plan_approved_via"] == "comment"
    assert file_at(stack.gitlab, f"agent/{key.lower()}", "mul.py") == "def mul(a, b):\n    return a * b\n"
    assert sum("Reminder" in t for t in texts(jira, key)) == 1  # one reminder, however many checks
    # The plan round and the implementation each took the project's slot and count against its budget.
    slots = stack.client.get_workflow_handle(
        slots_id(stack.settings.temporal_task_queue, mrs_of(stack.gitlab)[0].project.id)
    )
    assert (await slots.query("state"))["granted_today"] == 2
    # The implementer was given the approved plan.
    prompt = next(r for r in stack.model.requests if "implementer-report_implementation" in r.tools)
    assert '<untrusted source="approved_plan">' in str(prompt.messages) and "Add `mul` in mul.py." in str(
        prompt.messages
    )
    planner = next(r for r in stack.model.requests if "planner-report_plan" in r.tools)
    assert not {"create", "edit", "bash"} & set(planner.tools)  # the plan run is read-only


async def test_changes_requested_then_approved_by_an_operator_signal(stack, jira, jira_project, svc_repo):
    key = jira.create_issue(jira_project, "Add multiplication", "Multiply two numbers.", status="AI Ready")
    script(stack, revised=True)
    await start(stack, key)
    await until(lambda: any("round 1" in t for t in texts(jira, key)), what="plan 1")
    jira.comment_as(key, "changes: also reject non-numbers", LEAD)
    await until(lambda: any("round 2" in t for t in texts(jira, key)), what="plan 2")
    revision = next(r for r in stack.model.requests if "This is a revision" in str(r.messages))
    assert "also reject non-numbers" in str(revision.messages)
    # An `approve` given to plan 1 after plan 2 was posted would be late; the operator approves plan 2.
    handle = stack.client.get_workflow_handle(implement_id(key))
    await handle.signal("approve_plan", {"by": "ops-alice"})
    result = await handle.result()
    assert result["status"] == "in_review" and result["plan_rounds"] == 2
    assert result["plan_approved_by"] == "operator ops-alice" and result["plan_approved_via"] == "signal"
    prompt = next(r for r in stack.model.requests if "implementer-report_implementation" in r.tools)
    assert "reject non-numbers" in str(prompt.messages)


class TestExpiry:
    @pytest.fixture
    def settings_overrides(self, jira, jira_project) -> dict:
        jira.add_account(PASSER_BY, "other-token", "Casey Other")
        return {
            **jira_settings(jira, jira_project),
            "plan_approval": "required",
            "plan_approvers": "role:Developers",
            "plan_poll_interval": 1,
            "plan_reminder_after": 0,
            "plan_expire_after": 8,
        }

    async def test_approval_by_someone_who_may_not_is_ignored_and_the_plan_expires(
        self, stack, jira, jira_project, svc_repo
    ):
        key = jira.create_issue(
            jira_project, "Add multiplication", "Multiply two numbers.", status="AI Ready"
        )
        script(stack)
        await start(stack, key)
        await until(lambda: any("round 1" in t for t in texts(jira, key)), what="the plan")
        jira.comment_as(key, "approve", PASSER_BY)  # a Jira user, but not in the Developers role
        handle = stack.client.get_workflow_handle(implement_id(key))
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while not seen:
            assert time.monotonic() < deadline, "the unauthorised approval was never seen"
            await asyncio.sleep(0.3)
            seen = (await handle.query("progress"))["ignored"]
        assert "Casey Other: may not approve" in seen[0]

        result = await handle.result()  # expiry, 8 s after the plan
        assert result["status"] == "plan_expired" and "not approved within" in result["reason"]
        description = await handle.describe()
        assert description.typed_search_attributes.get(temporal.PLAN_APPROVAL) == "expired"
        assert not mrs_of(stack.gitlab) and not any(
            "implementer-report_implementation" in r.tools for r in stack.model.requests
        )
        issue = jira.issue(key)
        assert issue.status == "AI Ready" and FAILED_LABEL in issue.labels  # back, and not picked up again
        assert any("not approved within" in t and implement_id(key) in t for t in texts(jira, key))
