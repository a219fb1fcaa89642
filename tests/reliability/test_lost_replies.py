# ruff: noqa: F811 - pytest fixtures imported from tests/flows are redefined as parameters
"""Exactly once when the reply is lost: one lost reply on every write endpoint of every flow.

The stand-ins process the request and then answer a 429/5xx or drop the connection (what a proxy
timeout, a load balancer's 502 or a reset does to real traffic), so the write happened although the
client saw a failure. Each row of the matrix below loses the reply of one write; every flow runs
once with all of its rows armed (each write loses exactly one reply), and each row then asserts
exactly one effect in the stand-in's state and that the write was sent once: found and adopted by
the write door, never re-sent (activities/gitlab_writes.py, jira_writes.py, write_door.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.jira_api import FAILED_LABEL
from contracts.discussion import MRDiscussionInput
from contracts.ids import discussion_id, implement_id, review_id
from contracts.models import ReviewMRInput, ReviewMRResult, Trigger
from core import markers
from devenv.stack import AGENT, DEVELOPER
from standins.model_server import ChatRequest, Reply
from tests.flows.conftest import brain, gitlab, make_settings, model, stack, users  # noqa: F401
from tests.flows.helpers import finding, finish, inline_discussions, project_id, wait_workflow
from tests.flows.implement_support import (  # noqa: F401 (fixtures)
    REPO,
    agent_writes,
    jira,
    jira_project,
    jira_settings,
    mrs_of,
    svc_repo,
)

pytestmark = pytest.mark.flow

APP = "group/app"
DIV = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\ndef div(a, b):\n    return a / b\n"
FIXED = DIV.replace("    return a / b", "    return a / b if b else 0")
RESET = None  # the connection drops after the effect, no answer at all


@dataclass(frozen=True)
class Row:
    """One write endpoint: which request loses its reply, and how."""

    name: str
    method: str
    path: str  # a part of the request path that only this write's requests have
    lost: int | None  # the status answered after the effect, or RESET
    # Requests expected with that method and path: the lost one, never a second. None for git
    # pushes: curl re-sends a push on a connection that died, which the remote then rejects as a
    # ref update it already made (a compare-and-swap cannot apply twice); the effect is checked.
    sends: int | None = 1
    unless: str | None = None  # requests whose path holds this are another row's (bulk_publish)


@pytest.fixture
def settings_overrides(request) -> dict:
    # These tests lose the replies of resolutions too: the seed's default (suggest) never resolves.
    overrides = {"resolution_behavior": "auto-resolve"}
    if "jira" not in request.fixturenames:
        return overrides  # a GitLab-only test runs once, not once per Jira flavour
    jira, project = request.getfixturevalue("jira"), request.getfixturevalue("jira_project")
    return {**jira_settings(jira, project), **overrides}


def arm_gitlab(stack, rows: list[Row]) -> None:
    for row in rows:
        retry_after = 1 if row.lost == 429 else None
        stack.gitlab.lose_reply_next(
            row.sends or 1, row.lost, retry_after, path_contains=row.path, method=row.method
        )


def sent(stack, row: Row, since: int = 0) -> int:
    return sum(
        1
        for r in stack.gitlab.requests[since:]
        if r.method == row.method and row.path in r.path and not (row.unless and row.unless in r.path)
    )


def jira_sent(jira, row: Row) -> int:
    return sum(1 for r in jira.requests if r.method == row.method and row.path in r.path)


def assert_sent_once(stack, rows: list[Row], jira=None, since: int = 0) -> None:
    """`since`: count the GitLab requests from that index of the request log on."""
    for row in (r for r in rows if r.sends is not None):
        count = jira_sent(jira, row) if jira is not None else sent(stack, row, since)
        assert count == row.sends, f"{row.name}: {count} requests, expected {row.sends} (no re-send)"


async def review(stack, iid: int) -> ReviewMRResult:
    pid = project_id(stack)
    sha = stack.gitlab.mr_json(APP, iid)["sha"]
    workflow_id = review_id(pid, iid, sha)
    await stack.client.start_workflow(
        "ReviewMR",
        ReviewMRInput(project_id=pid, mr_iid=iid, head_sha=sha, trigger=Trigger.WEBHOOK),
        id=workflow_id,
        task_queue=stack.settings.temporal_task_queue,
    )
    description = await wait_workflow(stack.client, workflow_id, timeout=120)
    assert description.status == WorkflowExecutionStatus.COMPLETED, description.status
    return await stack.client.get_workflow_handle(workflow_id, result_type=ReviewMRResult).result()


def own_notes(stack, iid: int) -> list[dict]:
    return [n for n in stack.gitlab.notes(APP, iid) if n["author"]["username"] == AGENT]


def summaries(stack, iid: int) -> list[dict]:
    return [n for n in own_notes(stack, iid) if markers.parse(n["body"], markers.SUMMARY)]


# --- review ---------------------------------------------------------------------------------------
async def test_review_writes_lose_their_replies_and_happen_once(stack):
    stack.gitlab.commit(APP, "feature", {"app/calc.py": DIV}, "feat: add div", author=DEVELOPER)
    mr = stack.gitlab.create_mr(APP, "feature", title="Add div", author=DEVELOPER)
    base = f"/merge_requests/{mr.iid}"
    pid = project_id(stack)
    rows = [
        Row("award emoji", "POST", f"{base}/award_emoji", 502),
        # Both findings are drafts: the first POST is the inline one, the second the general one.
        Row(
            "inline + general draft note",
            "POST",
            f"{base}/draft_notes",
            RESET,
            sends=2,
            unless="bulk_publish",
        ),
        Row("bulk publish (with the summary)", "POST", f"{base}/draft_notes/bulk_publish", 429),
        Row("commit status running + success", "POST", f"/projects/{pid}/statuses/", 502, sends=2),
        Row("award emoji removal", "DELETE", f"{base}/award_emoji/", 503),
    ]
    arm_gitlab(stack, rows)
    stack.model.brain.brain.when(
        finding("app/calc.py", 10, "Division by zero is not handled"),
        finding("app/calc.py", 2, "Outside the diff: a general note"),
        finish("Adds div."),
        tool_offered="reviewer-finish_review",
    )
    result = await review(stack, mr.iid)

    inline = inline_discussions(stack, mr.iid)
    general = [
        d
        for d in stack.gitlab.discussions(APP, mr.iid)
        if d["notes"][0]["body"].startswith("**[") and "Outside the diff" in d["notes"][0]["body"]
    ]
    assert len(inline) == 1 and len(general) == 1  # one thread each, though each POST lost its reply
    assert len(summaries(stack, mr.iid)) == 1
    assert not stack.gitlab.drafts(APP, mr.iid)
    assert not stack.gitlab.award_emoji(APP, mr.iid)  # put on once, taken off once
    assert_sent_once(stack, rows)
    # One e-mail for the whole review (findings and the first summary), and one commit status.
    assert [(n.kind, n.notes) for n in stack.gitlab.notifications(APP, mr.iid)] == [("review", 3)]
    (status,) = stack.gitlab.commit_statuses(APP, result.head_sha)
    assert status["status"] == "success" and status["description"] == "2 findings, 0 critical · 1/1 files"
    assert status["target_url"].endswith(f"#note_{summaries(stack, mr.iid)[0]['id']}")
    # The receipt counts what was delivered, adopted or not.
    assert result.posted.inline == 1 and result.posted.fallback == 1 and result.posted.published == "drafts"
    assert "| New findings | 2 (1 inline, 1 as general comments) |" in summaries(stack, mr.iid)[0]["body"]


@pytest.mark.parametrize("settings_overrides", [{"review_publish": "direct"}])
async def test_a_retried_post_review_reports_what_the_review_delivered(stack):
    """Receipts across attempts: the first post_review attempt posts both findings and then cannot
    post the summary (GitLab refuses it more often than the door sends); the retried attempt finds
    the findings already there and still reports them as this review's."""
    stack.gitlab.commit(APP, "feature", {"app/calc.py": DIV}, "feat: add div", author=DEVELOPER)
    mr = stack.gitlab.create_mr(APP, "feature", title="Add div", author=DEVELOPER)
    stack.gitlab.fail_next(3, 503, path_contains=f"/merge_requests/{mr.iid}/notes", method="POST")
    stack.model.brain.brain.when(
        finding("app/calc.py", 10, "Division by zero is not handled"),
        finding("app/calc.py", 2, "Outside the diff: a general note"),
        finish("Adds div."),
        tool_offered="reviewer-finish_review",
    )
    result = await review(stack, mr.iid)

    assert len(stack.gitlab.discussions(APP, mr.iid)) == 3  # two findings and the summary, once each
    assert result.posted.inline == 1 and result.posted.fallback == 1
    assert result.posted.already_posted == 2  # ... both posted by the first attempt
    (summary,) = summaries(stack, mr.iid)
    assert "| New findings | 2 (1 inline, 1 as general comments) |" in summary["body"]


async def test_reconciling_drafts_loses_its_replies_and_happens_once(stack):
    """Drafts of the agent's account left on the MR: one of a dead older review (deleted, never
    published) and one the service did not write (left alone, so this review's drafts are published
    one by one instead of in a bulk publish that would publish it too). The delete and every
    publish lose their replies and still happen once."""
    stack.gitlab.commit(APP, "feature", {"app/calc.py": DIV}, "feat: add div", author=DEVELOPER)
    mr = stack.gitlab.create_mr(APP, "feature", title="Add div", author=DEVELOPER)
    store, agent = stack.gitlab.store, stack.gitlab.store.user_named(AGENT)
    gl_mr = stack.gitlab.mr(APP, mr.iid)
    stale_marker = markers.marker(markers.FINDING, fp="0" * 16, sha="c" * 40)
    stale = store.create_draft(
        gl_mr, agent, f"**[major]** From a dead review\n\n{stale_marker}",
        position=None, in_reply_to=None, resolve_discussion=False, commit_id=None,
    )  # fmt: skip
    foreign = store.create_draft(
        gl_mr, agent, "A draft someone typed with the agent's account",
        position=None, in_reply_to=None, resolve_discussion=False, commit_id=None,
    )  # fmt: skip
    base = f"/merge_requests/{mr.iid}"
    rows = [
        Row("stale draft delete", "DELETE", f"{base}/draft_notes/{stale.id}", RESET),
        Row("publish one draft (x2)", "PUT", "/publish", 502, sends=2),
    ]
    arm_gitlab(stack, rows)
    stack.model.brain.brain.when(
        finding("app/calc.py", 10, "Division by zero is not handled"),
        finding("app/calc.py", 2, "Outside the diff: a general note"),
        finish("Adds div."),
        tool_offered="reviewer-finish_review",
    )
    result = await review(stack, mr.iid)

    # Threads only: the summary's Findings table names every finding too.
    bodies = [
        d["notes"][0]["body"]
        for d in stack.gitlab.discussions(APP, mr.iid)
        if not markers.parse(d["notes"][0]["body"], markers.SUMMARY)
    ]
    assert (
        sum("Division by zero" in b for b in bodies) == 1
        and sum("Outside the diff" in b for b in bodies) == 1
    )
    assert not any("From a dead review" in b for b in bodies)
    assert [d["id"] for d in stack.gitlab.drafts(APP, mr.iid)] == [foreign.id]  # not ours to publish
    assert len(summaries(stack, mr.iid)) == 1
    assert_sent_once(stack, rows)
    assert result.posted.inline == 1 and result.posted.fallback == 1 and not result.posted.not_delivered


class _Resolver:
    """Finds the division bug on the first push; on the second reports it resolved and raises a new
    finding on the changed line."""

    def __init__(self) -> None:
        self.second = False

    def __call__(self, request: ChatRequest) -> Reply:
        if not request.offers("reviewer-finish_review"):
            return Reply.text("?")
        if request.turn == 0 and not self.second:
            return finding("app/calc.py", 10, "Division by zero is not handled")
        if request.turn == 0:
            thread = request.prompt.split("thread_id `", 1)[1].split("`", 1)[0]
            return Reply.call(
                "reviewer-report_resolution", thread_id=thread, status="resolved", reply="Guarded."
            )
        if request.turn == 1 and self.second:
            return finding("app/calc.py", 10, "Returning 0 silently hides a caller's mistake")
        if request.turn in (1, 2):
            return finish("Reviewed.")
        return Reply.text("Done.")


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {"review_publish": "drafts", "resolution_behavior": "auto-resolve"},
        {"review_publish": "direct", "resolution_behavior": "auto-resolve"},
    ],
    ids=["drafts", "direct"],
)
async def test_resolving_review_writes_lose_their_replies_and_happen_once(stack, settings_overrides):
    """The second review resolves the first one's thread (the finding ledger's reply and resolve) and
    posts a new finding. With drafts, the reply is a draft that resolves its thread when the batch
    is published, with the new finding: one notification for the review; directly, one per note."""
    brain = stack.model.brain.brain = _Resolver()
    stack.gitlab.commit(APP, "feature", {"app/calc.py": DIV}, "feat: add div", author=DEVELOPER)
    mr = stack.gitlab.create_mr(APP, "feature", title="Add div", author=DEVELOPER)
    await review(stack, mr.iid)
    (thread,) = inline_discussions(stack, mr.iid)
    (summary,) = summaries(stack, mr.iid)

    brain.second = True
    stack.gitlab.commit(APP, "feature", {"app/calc.py": FIXED}, "fix: guard div", author=DEVELOPER)
    base = f"/merge_requests/{mr.iid}"
    drafts = settings_overrides["review_publish"] == "drafts"
    if drafts:
        # The new finding and the ledger's reply (which resolves its thread) are drafts, created
        # side by side; both lose their replies, then the bulk publish loses its connection.
        rows = [
            Row("finding + reply drafts", "POST", f"{base}/draft_notes", 502, sends=2, unless="bulk_publish"),
            Row("bulk publish", "POST", f"{base}/draft_notes/bulk_publish", RESET),
            Row("summary note edit", "PUT", f"{base}/notes/{summary['id']}", 500),
        ]
    else:
        rows = [
            Row("finding thread", "POST", f"{base}/discussions", 502, unless="/notes"),
            Row("resolution reply", "POST", f"/discussions/{thread['id']}/notes", 502),
            Row("resolve", "PUT", f"/discussions/{thread['id']}", RESET),
            Row("summary note edit", "PUT", f"{base}/notes/{summary['id']}", 500),
        ]
    since = len(stack.gitlab.requests)  # the first review's requests are not this test's
    notified = len(stack.gitlab.notifications(APP, mr.iid))
    arm_gitlab(stack, rows)
    result = await review(stack, mr.iid)

    after = next(d for d in stack.gitlab.discussions(APP, mr.iid) if d["id"] == thread["id"])
    replies = [n for n in after["notes"][1:] if n["author"]["username"] == AGENT]
    assert len(replies) == 1 and replies[0]["body"].startswith("**Resolved**")
    assert after["notes"][0]["resolved"] is True
    new = [d for d in inline_discussions(stack, mr.iid) if d["id"] != thread["id"]]
    assert len(new) == 1 and "Returning 0 silently" in new[0]["notes"][0]["body"]
    assert not stack.gitlab.drafts(APP, mr.iid)
    (edited,) = summaries(stack, mr.iid)
    assert edited["id"] == summary["id"] and FIXED != DIV
    sha = stack.gitlab.mr_json(APP, mr.iid)["sha"]
    assert markers.parse(edited["body"], markers.SUMMARY) == {"last_reviewed_sha": sha}
    assert_sent_once(stack, rows, since=since)
    assert result.posted.resolved == 1 and result.posted.replies == 1 and result.posted.threads_resolved == 1
    assert result.posted.inline == 1 and not result.posted.not_delivered
    notifications = [(n.kind, n.notes) for n in stack.gitlab.notifications(APP, mr.iid)[notified:]]
    if drafts:
        assert notifications == [("review", 2)]  # one notification for the review: finding + reply
    else:
        assert notifications == [("note", 1), ("note", 1)]  # one per comment without draft notes


# --- discussion -----------------------------------------------------------------------------------
def _open_mr_with_note_ids(stack):
    # Workflow IDs are keyed by note ID and the Temporal server is shared by the session.
    stack.gitlab.store._ids["note"] = uuid.uuid4().int % 10**12 * 1000
    stack.gitlab.commit(APP, "feature", {"app/calc.py": DIV}, "feat: add div", author=DEVELOPER)
    return stack.gitlab.create_mr(APP, "feature", title="Add div", author=DEVELOPER)


async def answer(stack, mr, note_id: int, discussion: str | None = None) -> dict:
    workflow_id = discussion_id(project_id(stack), note_id)
    await stack.client.start_workflow(
        "MRDiscussion",
        MRDiscussionInput(
            project_id=project_id(stack), mr_iid=mr.iid, note_id=note_id, discussion_id=discussion
        ),
        id=workflow_id,
        task_queue=stack.settings.temporal_task_queue,
    )
    description = await wait_workflow(stack.client, workflow_id, timeout=120)
    assert description.status == WorkflowExecutionStatus.COMPLETED, description.status
    return await stack.client.get_workflow_handle(workflow_id).result()


def thread_of(stack, mr, note_id: int) -> dict:
    return next(
        d for d in stack.gitlab.discussions(APP, mr.iid) if any(n["id"] == note_id for n in d["notes"])
    )


async def test_discussion_reply_and_resolve_lose_their_replies_and_happen_once(stack):
    mr = _open_mr_with_note_ids(stack)
    body = markers.with_marker(
        "**[major]** Division by zero is not handled", markers.FINDING, {"fp": "abc123", "sha": "0" * 40}
    )
    agent_note = stack.gitlab.add_note(APP, mr.iid, AGENT, body)
    thread_id = thread_of(stack, mr, agent_note.id)["id"]
    note = stack.gitlab.add_note(APP, mr.iid, DEVELOPER, "Fixed in the last push.", discussion_id=thread_id)
    rows = [
        Row("award emoji on the note", "POST", f"/notes/{note.id}/award_emoji", 429),
        Row("reply", "POST", f"/discussions/{thread_id}/notes", RESET),
        Row("resolve", "PUT", f"/discussions/{thread_id}", 502),
        Row("award emoji removal", "DELETE", f"/notes/{note.id}/award_emoji/", RESET),
    ]
    arm_gitlab(stack, rows)
    stack.model.brain.brain.when(
        Reply.calls(
            (
                "discussion-report_resolution",
                {"thread_id": thread_id, "status": "resolved", "reply": "Checked."},
            ),
            ("discussion-reply", {"body": "Thanks, the guard is in place."}),
        ),
        Reply.text("done"),
        tool_offered="discussion-reply",
    )
    result = await answer(stack, mr, note.id, thread_id)

    thread = thread_of(stack, mr, note.id)
    assert [n["author"]["username"] for n in thread["notes"]] == [AGENT, DEVELOPER, AGENT]
    assert all(n["resolved"] for n in thread["notes"] if n["resolvable"])
    assert not stack.gitlab.award_emoji(APP, mr.iid, note.id)
    assert result["status"] == "replied" and result["resolved"] is True
    assert_sent_once(stack, rows)


async def test_discussion_push_loses_its_reply_and_happens_once(stack):
    mr = _open_mr_with_note_ids(stack)
    before = stack.gitlab.branch_sha(APP, "feature")
    note = stack.gitlab.add_note(APP, mr.iid, DEVELOPER, "@copilot-agent please add a test for div")
    thread_id = thread_of(stack, mr, note.id)["id"]
    rows = [
        Row("git push", "POST", "/git-receive-pack", 502, sends=None),
        Row("reply", "POST", f"/discussions/{thread_id}/notes", 503),
    ]
    arm_gitlab(stack, rows)
    stack.model.brain.brain.when(
        Reply.call("create", path="app/test_calc.py", file_text="def test_div():\n    assert True\n"),
        Reply.calls(
            ("discussion-report_change", {"commit_type": "test", "summary": "Add a test for div"}),
            ("discussion-reply", {"body": "Added a test for `div`."}),
        ),
        Reply.text("done"),
        tool_offered="discussion-reply",
    )
    result = await answer(stack, mr, note.id)

    repo = stack.gitlab.store.project(APP).repo
    head = stack.gitlab.branch_sha(APP, "feature")
    assert repo.commit_info(head).parents == [before]  # one commit on the branch, pushed once
    assert result["commit_sha"] == head
    replies = [n for n in thread_of(stack, mr, note.id)["notes"] if n["author"]["username"] == AGENT]
    assert len(replies) == 1 and head[:12] in replies[0]["body"]
    assert_sent_once(stack, rows)


# --- implementation -------------------------------------------------------------------------------
async def implement(stack, key: str) -> dict:
    await stack.client.start_workflow(
        "ImplementIssue",
        {"issue_key": key},
        id=implement_id(key),
        task_queue=stack.settings.temporal_task_queue,
    )
    description = await wait_workflow(stack.client, implement_id(key), timeout=180)
    assert description.status == WorkflowExecutionStatus.COMPLETED, description.status
    return await stack.client.get_workflow_handle(implement_id(key)).result()


def arm_jira(jira, rows: list[Row]) -> None:
    for row in rows:
        jira.lose_next(row.sends or 1, row.lost, method=row.method, path_contains=row.path)


async def test_implementation_writes_lose_their_replies_and_happen_once(stack, jira, jira_project, svc_repo):
    key = jira.create_issue(jira_project, "Add multiplication", "Multiply.", status="AI Ready")
    gitlab_rows = [
        Row("git push of the branch", "POST", "/git-receive-pack", RESET, sends=None),
        Row("MR create", "POST", f"/projects/{stack.gitlab.store.project(REPO).id}/merge_requests", 502),
    ]
    jira_rows = [
        Row("transitions (In Progress, In Review)", "POST", f"/issue/{key}/transitions", 503, sends=2),
        Row("Jira comment", "POST", f"/issue/{key}/comment", RESET),
    ]
    arm_gitlab(stack, gitlab_rows)
    arm_jira(jira, jira_rows)
    stack.model.brain.brain.when(
        *agent_writes(
            {"mul.py": "def mul(a, b):\n    return a * b\n"}, summary="Added mul.", subject="add mul"
        ),
        tool_offered="implementer-report_implementation",
    )
    result = await implement(stack, key)

    assert result["status"] == "in_review"
    (mr,) = mrs_of(stack.gitlab)
    branches = [b for b in stack.gitlab.store.project(REPO).repo.branches() if b.startswith("agent/")]
    assert branches == [mr.source_branch]
    comments = [str(c.body) for c in jira.comments(key)]
    assert len(comments) == 1 and "merge request" in comments[0]
    assert jira.issue(key).status == "In Review"
    assert_sent_once(stack, gitlab_rows)
    assert_sent_once(stack, jira_rows, jira)


async def test_failed_implementation_writes_lose_their_replies_and_happen_once(
    stack, jira, jira_project, svc_repo
):
    key = jira.create_issue(jira_project, "Make it faster", None, status="AI Ready")
    rows = [
        Row("transitions (In Progress, back to AI Ready)", "POST", f"/issue/{key}/transitions", 502, sends=2),
        Row("Jira comment", "POST", f"/issue/{key}/comment", 503),
        Row("label", "PUT", f"/issue/{key}", RESET),
    ]
    arm_jira(jira, rows)
    stack.model.brain.brain.when(
        Reply.call(
            "implementer-report_implementation", summary="Nothing to change.", commit_summary="nothing"
        ),
        Reply.text("Done."),
        tool_offered="implementer-report_implementation",
    )
    result = await implement(stack, key)

    assert result["status"] == "no_change"
    issue = jira.issue(key)
    assert issue.status == "AI Ready" and issue.labels.count(FAILED_LABEL) == 1
    assert len(jira.comments(key)) == 1
    assert_sent_once(stack, rows, jira)
