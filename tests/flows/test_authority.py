"""Every effect re-checks its authority where it happens (security review findings 5 and 8): the
requester's own right to push to a protected source branch, GitLab's answer rather than the
workflow's input, and GITLAB_PROJECTS inside the activities, for runs started by hand too."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.discussion import DiscussionActivities
from contracts.discussion import DiscussionRunInput
from contracts.ids import discussion_id, review_id
from devenv.stack import AGENT, DEVELOPER, WEBHOOK_SECRET
from standins.gitlab import AccessEntry
from standins.model_server import ChatRequest, Reply
from tests.flows.helpers import finish, head_sha, project_id, wait_workflow
from tests.flows.test_discussion_flow import (
    NEW_CALC,
    REQUEST_TOOL,
    TEST_FILE,
    TEST_TEXT,
    agent_replies,
    ask,
    script,
    thread_of,
)


@pytest.fixture
async def mr(stack):
    """An open MR from `feature` whose Note Hooks go to the API (as in test_discussion_flow)."""
    stack.gitlab.store._ids["note"] = uuid.uuid4().int % 10**12 * 1000  # unique workflow IDs
    stack.model.brain.brain.when(finish("Fine."), tool_offered="reviewer-finish_review")
    stack.gitlab.commit("group/app", "feature", {"app/calc.py": NEW_CALC}, "feat: add div", author=DEVELOPER)
    created = stack.gitlab.create_mr("group/app", "feature", title="Add div", author=DEVELOPER)
    stack.gitlab.set_webhook(f"{stack.api_url}/webhook", WEBHOOK_SECRET)
    return created


def _change(request: ChatRequest) -> Reply:
    return Reply.call("create", path=TEST_FILE, file_text=TEST_TEXT)


def _report(request: ChatRequest) -> Reply:
    return Reply.calls(
        ("discussion-report_change", {"commit_type": "test", "summary": "Add a test"}),
        (REQUEST_TOOL, {"body": "Done as asked."}),
    )


def pushes_since(stack, start: int, branch: str) -> list:
    return [p for p in stack.gitlab.push_log[start:] if p.branch == branch]


async def test_protected_source_branch_gets_no_push_for_a_developer_who_may_not_push_there(stack):
    """A Developer opens an MR from a branch only Maintainers may push to, and asks the agent (which
    may push there) for a change: nothing is pushed, and the reply says why."""
    gl = stack.gitlab
    gl.store._ids["note"] = uuid.uuid4().int % 10**12 * 1000  # unique workflow IDs
    gl.commit("group/app", "release-1", {"app/calc.py": NEW_CALC}, "feat: div", author=DEVELOPER)
    gl.protect_branch("group/app", "release-*", push=[AccessEntry(40)])
    created = gl.create_mr("group/app", "release-1", title="Release fixes", author=DEVELOPER)
    prompts: list[str] = []

    def obey(request: ChatRequest) -> Reply:
        prompts.append(request.prompt)
        return _change(request)

    script(stack, obey, _report, Reply.text("done"))
    before, start = gl.branch_sha("group/app", "release-1"), len(gl.push_log)
    note = gl.add_note("group/app", created.iid, DEVELOPER, "@copilot-agent add a test for div")
    workflow_id = discussion_id(project_id(stack), note.id)
    await stack.client.start_workflow(
        "MRDiscussion",
        {"project_id": project_id(stack), "mr_iid": created.iid, "note_id": note.id},
        id=workflow_id,
        task_queue=stack.settings.temporal_task_queue,
    )
    await wait_workflow(stack.client, workflow_id, timeout=90)
    result = await stack.client.get_workflow_handle(workflow_id).result()

    assert result["status"] == "replied" and result["push"] != "pushed"
    assert gl.branch_sha("group/app", "release-1") == before and not pushes_since(stack, start, "release-1")
    assert "You cannot change files here" in prompts[0] and "is a protected branch" in prompts[0]
    reply = next(n["body"] for n in gl.notes("group/app", created.iid) if n["author"]["username"] == AGENT)
    assert ":no_entry: I pushed nothing: `release-1` is a protected branch (`release-*`)" in reply
    assert f"@{DEVELOPER} is not allowed to push to it" in reply


async def test_protection_added_while_the_agent_works_stops_the_push(stack, mr):
    """Rights are read again right before the push: a branch protected during the run gets nothing."""

    def protect_meanwhile(request: ChatRequest) -> Reply:
        stack.gitlab.protect_branch("group/app", "feature", push=[AccessEntry(40)])
        return _change(request)

    script(stack, protect_meanwhile, _report, Reply.text("done"))
    before, start = stack.gitlab.branch_sha("group/app", "feature"), len(stack.gitlab.push_log)
    note, result = await ask(stack, mr, DEVELOPER, "@copilot-agent please add a test for div")
    assert result["push"] == "not_allowed"
    assert stack.gitlab.branch_sha("group/app", "feature") == before
    assert not pushes_since(stack, start, "feature")
    reply = agent_replies(thread_of(stack, mr, note.id))[0]["body"]
    assert "I pushed nothing: `feature` is a protected branch" in reply


async def test_a_member_of_an_allowed_group_may_have_the_agent_push(stack, mr):
    """The other side of the rule: a group allowed to push on a protected branch lets its member."""
    group = stack.gitlab.add_group("group/release-managers", {DEVELOPER: 30})
    stack.gitlab.protect_branch(
        "group/app", "feature", push=[AccessEntry(40), AccessEntry(group_id=group.id)]
    )
    script(stack, _change, _report, Reply.text("done"))
    start = len(stack.gitlab.push_log)
    _, result = await ask(stack, mr, DEVELOPER, "@copilot-agent please add a test for div")
    assert result["push"] == "pushed" and pushes_since(stack, start, "feature")


async def test_crafted_may_push_is_recomputed_from_gitlab(stack, mr):
    """An activity input claiming `may_push` for a Reporter's note (a crafted manual start, or one
    scheduled by anything that reaches Temporal) is checked against GitLab, and loses."""
    note = stack.gitlab.add_note("group/app", mr.iid, "reporter", "@copilot-agent push this please")
    thread = thread_of(stack, mr, note.id)["id"]
    crafted = DiscussionRunInput(
        project_id=project_id(stack), mr_iid=mr.iid, note_id=note.id, discussion_id=thread,
        author_username=DEVELOPER, may_push=True, workflow_id="crafted",
    )  # fmt: skip
    task, _, _, refusal = DiscussionActivities(stack.settings, executor=None)._task(crafted)
    assert task.may_push is False and task.author == "reporter"
    assert "no longer holds in GitLab" in refusal and "needs at least developer" in refusal


@pytest.mark.parametrize("settings_overrides", [{"gitlab_projects": ["group/elsewhere"]}])
async def test_manual_start_outside_the_allowlist_ends_ignored(stack):
    """`temporal workflow start` for a project this deployment does not serve: both flows end
    "ignored" with the reason; no agent run, no write, no reaction."""
    gl = stack.gitlab
    gl.store._ids["note"] = uuid.uuid4().int % 10**12 * 1000  # unique workflow IDs
    gl.commit("group/app", "feature", {"app/calc.py": NEW_CALC}, "feat: div", author=DEVELOPER)
    created = gl.create_mr("group/app", "feature", title="Add div", author=DEVELOPER)
    note = gl.add_note("group/app", created.iid, DEVELOPER, "@copilot-agent hello")
    pid, queue = project_id(stack), stack.settings.temporal_task_queue
    runs = {
        review_id(pid, created.iid, head_sha(stack, created.iid)): (
            "ReviewMR",
            {"project_id": pid, "mr_iid": created.iid},
        ),
        discussion_id(pid, note.id): (
            "MRDiscussion",
            {"project_id": pid, "mr_iid": created.iid, "note_id": note.id},
        ),
    }
    writes_before = gl.request_count("POST") + gl.request_count("PUT")
    for workflow_id, (kind, arg) in runs.items():
        await stack.client.start_workflow(kind, arg, id=workflow_id, task_queue=queue)
    for workflow_id in runs:
        description = await wait_workflow(stack.client, workflow_id, timeout=60)
        assert description.status == WorkflowExecutionStatus.COMPLETED
        result = await stack.client.get_workflow_handle(workflow_id).result()
        assert result["status"] == "ignored"
        assert result["reason"] == "project group/app is not in GITLAB_PROJECTS"
    assert gl.request_count("POST") + gl.request_count("PUT") == writes_before
    assert not stack.model.requests
    assert [n["author"]["username"] for n in gl.notes("group/app", created.iid)] == [DEVELOPER]
