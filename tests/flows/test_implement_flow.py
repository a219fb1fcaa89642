# ruff: noqa: F811 - pytest fixtures imported from implement_support are redefined as parameters
"""ImplementIssue end to end: Jira stand-in issue in "AI Ready" → PollJira → real Temporal → real
Copilot CLI (scripted model) writing files → the service's own test run → real git push to the
GitLab stand-in → Draft MR → Jira comment and "In Review"."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.jira_api import FAILED_LABEL
from contracts import temporal
from contracts.ids import implement_id
from core import implement_commit
from devenv.worker_process import WorkerProcess
from standins.model_server import Reply, ScriptedBrain
from tests.flows.helpers import wait_workflow
from tests.flows.implement_support import (  # noqa: F401 (fixtures)
    ADF_DESCRIPTION,
    MUL_TEST,
    REPO,
    WIKI_DESCRIPTION,
    agent_writes,
    commit_message,
    description_for,
    file_at,
    jira,
    jira_project,
    jira_settings,
    mrs_of,
    svc_repo,
)

pytestmark = pytest.mark.flow


@pytest.fixture
def settings_overrides(jira, jira_project) -> dict:
    return jira_settings(jira, jira_project)


async def poll_once(stack) -> dict:
    return await stack.client.execute_workflow(
        "PollJira", id=f"poll-jira-test-{uuid.uuid4().hex[:8]}", task_queue=stack.settings.temporal_task_queue
    )


async def implemented(stack, key: str):
    description = await wait_workflow(stack.client, implement_id(key), timeout=120)
    result = await stack.client.get_workflow_handle(implement_id(key)).result()
    return description, result


def script(stack, turns) -> None:
    stack.model.brain.brain.when(*turns, tool_offered="implementer-report_implementation")


async def test_ai_ready_issue_becomes_draft_mr_with_passing_tests(stack, jira, jira_project, svc_repo):
    described = description_for(jira, ADF_DESCRIPTION, WIKI_DESCRIPTION)
    key = jira.create_issue(jira_project, "Add multiplication", described, status="AI Ready")
    script(
        stack,
        agent_writes(
            {"mul.py": "def mul(a, b):\n    return a * b\n", "tests/test_mul.py": MUL_TEST},
            summary="Added `mul` with a unit test.",
            subject="add mul",
        ),
    )
    polled = await poll_once(stack)
    assert polled["started"] == [key]
    description, result = await implemented(stack, key)
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert result["status"] == "in_review"

    branch = f"agent/{key.lower()}"
    assert result["branch"] == branch
    assert file_at(stack.gitlab, branch, "mul.py") == "def mul(a, b):\n    return a * b\n"
    assert file_at(stack.gitlab, branch, "tests/test_mul.py") == MUL_TEST
    message = commit_message(stack.gitlab, branch)
    assert message.startswith(f"feat({key.lower()}): add mul")
    assert implement_commit.trailers(message)["Jira-Issue"] == key

    (mr,) = mrs_of(stack.gitlab)
    assert mr.draft and mr.title == f"Draft: feat({key.lower()}): add mul"
    assert mr.source_branch == branch and mr.author.username == "copilot-agent"
    assert f"[{key}]({jira.url}/browse/{key})" in mr.description
    assert "Added `mul` with a unit test." in mr.description
    assert "**passing**" in mr.description and "| Exit code | 0 |" in mr.description
    assert "| Result | 2 passed, 0 failed |" in mr.description
    assert "python3 -m unittest discover" in mr.description and "Ran 2 tests" in mr.description

    issue = jira.issue(key)
    assert issue.status == "In Review"
    (comment,) = jira.comments(key)
    assert result["mr_url"] in str(comment.body) and result["mr_url"].endswith(f"/-/merge_requests/{mr.iid}")
    assert [r.to_status for r in jira.transition_log if r.key == key] == ["In Progress", "In Review"]

    # Each flavour was spoken natively: v3 (ADF) on Cloud; v2 only on Server/DC, which has no v3.
    paths = [r.path for r in jira.requests]
    if jira.cloud:
        assert f"/rest/api/3/issue/{key}" in paths and isinstance(jira.comments(key)[0].body, dict)
    else:
        assert not any(p.startswith("/rest/api/3/") for p in paths) and "/rest/api/2/search/jql" not in paths
        assert isinstance(jira.comments(key)[0].body, str)
    # The ADF / wiki description reached the prompt as markdown text, labelled untrusted.
    prompt = next(r for r in stack.model.requests if "implementer-report_implementation" in r.tools)
    text = str(prompt.messages)
    assert '<untrusted source="jira_description">' in text
    assert "## Goal" in text and "add mul(a, b) in mul.py" in text and "assert mul(2, 3) == 6" in text

    # A second poll finds nothing: the issue is In Review now.
    assert (await poll_once(stack))["found"] == 0


async def test_failing_tests_still_open_a_draft_and_a_taken_branch_gets_suffix(
    stack, jira, jira_project, svc_repo
):
    key = jira.create_issue(jira_project, "Add multiplication", "Multiply.", status="AI Ready")
    # Someone else's branch under the agent's name: never overwritten.
    stack.gitlab.commit(REPO, f"agent/{key.lower()}", {"other.txt": "not ours\n"}, "human work")
    script(
        stack,
        agent_writes(
            {"mul.py": "def mul(a, b):\n    return a + b\n", "tests/test_mul.py": MUL_TEST},
            summary="Added `mul`.",
            subject="feat: add mul",
        ),
    )
    await stack.client.start_workflow(
        "ImplementIssue",
        {"issue_key": key},
        id=implement_id(key),
        task_queue=stack.settings.temporal_task_queue,
    )
    _, result = await implemented(stack, key)
    assert result["status"] == "in_review" and result["branch"] == f"agent/{key.lower()}-2"
    assert file_at(stack.gitlab, f"agent/{key.lower()}", "other.txt") == "not ours\n"
    (mr,) = mrs_of(stack.gitlab)
    assert mr.source_branch == f"agent/{key.lower()}-2" and mr.draft
    assert mr.title == f"Draft: feat({key.lower()}): add mul"
    assert "**failing**" in mr.description and "| Exit code | 1 |" in mr.description
    assert "| Result | 1 passed, 1 failed |" in mr.description
    assert "AssertionError: 5 != 6" in mr.description
    assert jira.issue(key).status == "In Review"
    assert "Tests: failing" in str(jira.comments(key)[0].body)


async def test_no_change_comments_and_returns_issue_labelled(stack, jira, jira_project, svc_repo):
    key = jira.create_issue(jira_project, "Make it faster", None, status="AI Ready")
    script(
        stack,
        [
            Reply.call(
                "implementer-report_implementation",
                summary="Nothing to change: the issue gives no measurable goal.",
                commit_summary="nothing",
            ),
            Reply.text("Done."),
        ],
    )
    await poll_once(stack)
    _, result = await implemented(stack, key)
    assert result["status"] == "no_change"
    issue = jira.issue(key)
    assert issue.status == "AI Ready" and FAILED_LABEL in issue.labels
    (comment,) = jira.comments(key)
    body = str(comment.body)
    assert "produced no change" in body and implement_id(key) in body and "no measurable goal" in body
    assert "Traceback" not in body and "jira-test-token" not in body
    assert not mrs_of(stack.gitlab)
    # The label keeps the poller away until a human removes it.
    assert (await poll_once(stack))["found"] == 0


async def test_two_pollers_at_once_start_one_run(stack, jira, jira_project, svc_repo):
    key = jira.create_issue(jira_project, "Add multiplication", "Multiply.", status="AI Ready")
    script(
        stack,
        agent_writes(
            {"mul.py": "def mul(a, b):\n    return a * b\n"}, summary="Added mul.", subject="add mul"
        ),
    )
    first, second = await asyncio.gather(poll_once(stack), poll_once(stack))
    assert sorted([len(first["started"]), len(second["started"])]) == [0, 1]
    await implemented(stack, key)
    runs = [w async for w in stack.client.list_workflows(f"WorkflowId = '{implement_id(key)}'")]
    assert len(runs) == 1
    assert len(mrs_of(stack.gitlab)) == 1 and len(jira.comments(key)) == 1


async def test_worker_killed_after_the_push_leaves_exactly_one_mr(
    temporal_server,
    task_queue,
    gitlab,
    users,
    model,
    brain,
    tmp_path,
    jira,
    jira_project,
    svc_repo,
    make_settings,
):
    brain.brain = ScriptedBrain()
    brain.brain.when(
        *agent_writes(
            {"mul.py": "def mul(a, b):\n    return a * b\n"}, summary="Added mul.", subject="add mul"
        ),
        tool_offered="implementer-report_implementation",
    )
    settings = make_settings(**jira_settings(jira, jira_project))
    key = jira.create_issue(jira_project, "Add multiplication", "Multiply.", status="AI Ready")
    branch = f"agent/{key.lower()}"
    client = await temporal.connect(settings)
    with WorkerProcess(settings, log_file=tmp_path / "worker.log") as worker:
        await client.start_workflow(
            "ImplementIssue", {"issue_key": key}, id=implement_id(key), task_queue=task_queue
        )
        deadline = time.monotonic() + 90
        while not any(p.branch == branch for p in gitlab.push_log):
            assert time.monotonic() < deadline, "the agent's branch was never pushed"
            await asyncio.sleep(0.05)
        worker.kill()  # a crash between the push and the MR
        assert not mrs_of(gitlab)
        worker.start()
        description = await wait_workflow(client, implement_id(key), timeout=150)
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert [p.branch for p in gitlab.push_log if p.branch.startswith("agent/")] == [branch]
    (mr,) = mrs_of(gitlab)
    assert mr.source_branch == branch and mr.draft and "Added mul." in mr.description
    assert jira.issue(key).status == "In Review" and len(jira.comments(key)) == 1
