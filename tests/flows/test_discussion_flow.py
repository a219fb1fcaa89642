"""MRDiscussion end to end: a note on the GitLab stand-in → its Note Hook → real API → real Temporal
→ real Copilot CLI against the scripted model → one reply in the thread, and for a Developer's
request a real commit pushed to the MR branch in the stand-in's git repository."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from contracts.discussion import MRDiscussionInput
from contracts.ids import discussion_id, review_id
from core import markers
from devenv.stack import AGENT, DEVELOPER, WEBHOOK_SECRET
from standins.model_server import ChatRequest, Reply
from tests.flows.helpers import finish, project_id, wait_workflow

REQUEST_TOOL = "discussion-reply"
WRITE_TOOLS = {"create", "edit", "bash"}
NEW_CALC = (
    "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\n"
    "def div(a, b):\n    return a / b\n"
)
TEST_FILE = "app/test_calc.py"
TEST_TEXT = "from app.calc import div\n\n\ndef test_div():\n    assert div(6, 3) == 2\n"


@pytest.fixture
async def mr(stack):
    """An open MR; the stand-in's webhooks go to the API; reviews of later pushes finish at once."""
    # Workflow IDs are keyed by note ID and every test's stand-in counts notes from 1, while the
    # Temporal server is shared by the session: start this stand-in's note IDs somewhere unique.
    stack.gitlab.store._ids["note"] = uuid.uuid4().int % 10**12 * 1000
    stack.model.brain.brain.when(finish("Fine."), tool_offered="reviewer-finish_review")
    stack.gitlab.commit("group/app", "feature", {"app/calc.py": NEW_CALC}, "feat: add div", author=DEVELOPER)
    created = stack.gitlab.create_mr("group/app", "feature", title="Add div", author=DEVELOPER)
    # Hooks from here on: notes, and the pushes during a test (the opening review is not the subject).
    stack.gitlab.set_webhook(f"{stack.api_url}/webhook", WEBHOOK_SECRET)
    return created


def script(stack, *turns):
    stack.model.brain.brain.when(*turns, tool_offered=REQUEST_TOOL)


async def ask(stack, mr, user: str, body: str, discussion: str | None = None):
    """Post a note as `user` (its Note Hook goes to the API) and wait for its workflow."""
    note = stack.gitlab.add_note("group/app", mr.iid, user, body, discussion_id=discussion)
    assert stack.gitlab.wait_webhooks()
    workflow_id = discussion_id(project_id(stack), note.id)
    description = await wait_workflow(stack.client, workflow_id, timeout=60)
    assert description.status == WorkflowExecutionStatus.COMPLETED, description.status
    return note, await stack.client.get_workflow_handle(workflow_id).result()


def thread_of(stack, mr, note_id: int) -> dict:
    return next(
        d
        for d in stack.gitlab.discussions("group/app", mr.iid)
        if any(n["id"] == note_id for n in d["notes"])
    )


def agent_replies(thread: dict) -> list[dict]:
    return [n for n in thread["notes"] if n["author"]["username"] == AGENT]


def discussion_requests(stack) -> list:
    return [r for r in stack.model.requests if REQUEST_TOOL in r.tools]


async def test_mention_is_answered_in_the_thread_once_even_when_redelivered(stack, mr):
    script(
        stack, Reply.call(REQUEST_TOOL, body="Division by zero raises ZeroDivisionError."), Reply.text("ok")
    )
    note, result = await ask(stack, mr, DEVELOPER, "@copilot-agent what happens when b is 0?")
    assert result["status"] == "replied" and result["push"] == "none"

    thread = thread_of(stack, mr, note.id)
    replies = agent_replies(thread)
    assert len(replies) == 1
    assert replies[0]["body"].startswith("Division by zero raises ZeroDivisionError.")
    assert markers.parse(replies[0]["body"], markers.REPLY) == {"note": str(note.id)}
    assert not stack.gitlab.award_emoji("group/app", mr.iid, note.id)  # 👀 cleared when done

    prompt = discussion_requests(stack)[0].messages[-1]["content"]
    text = prompt if isinstance(prompt, str) else str(prompt)
    assert text.rstrip().endswith(
        '<untrusted source="request">\n@copilot-agent what happens when b is 0?\n</untrusted>'
    )
    assert "+def div(a, b):" in text

    # GitLab redelivers the hook: same workflow ID, nothing new.
    payload = stack.gitlab.note_hook_payload("group/app", mr.iid, note.id)
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        again = await http.post("/webhook", json=payload, headers={"X-Gitlab-Token": WEBHOOK_SECRET})
    assert again.json() == {"status": "duplicate", "workflow_id": discussion_id(project_id(stack), note.id)}
    # An operator re-runs it by hand under another ID: the reply marker stops a second answer.
    rerun = await stack.client.execute_workflow(
        "MRDiscussion",
        MRDiscussionInput(project_id=project_id(stack), mr_iid=mr.iid, note_id=note.id),
        id=f"manual-{note.id}-{stack.settings.temporal_task_queue}",
        task_queue=stack.settings.temporal_task_queue,
    )
    assert rerun["status"] == "already_replied"
    assert len(agent_replies(thread_of(stack, mr, note.id))) == 1
    first_turns = [
        r for r in discussion_requests(stack) if not any(m.get("role") == "assistant" for m in r.messages)
    ]
    assert len(first_turns) == 1  # one agent session


# RESOLUTION_BEHAVIOR defaults to "suggest" (the seed's); this test is about resolving
@pytest.mark.parametrize("settings_overrides", [{"resolution_behavior": "auto-resolve"}])
async def test_reply_in_the_agents_finding_thread_is_answered_and_resolves_it(stack, mr):
    finding = markers.with_marker(
        "**[major]** Division by zero is not handled", markers.FINDING, {"fp": "abc123", "sha": "0" * 40}
    )
    agent_note = stack.gitlab.add_note("group/app", mr.iid, AGENT, finding)
    assert stack.gitlab.wait_webhooks()
    # The agent's own note is ignored by the API: no workflow for it.
    assert stack.gitlab.webhook_deliveries[-1].status == 200
    thread_id = thread_of(stack, mr, agent_note.id)["id"]

    def verdict(request: ChatRequest) -> Reply:
        assert f"thread_id `{thread_id}`" in request.prompt
        return Reply.calls(
            (
                "discussion-report_resolution",
                {"thread_id": thread_id, "status": "resolved", "reply": "b is checked now."},
            ),
            (REQUEST_TOOL, {"body": "Thanks, the guard is in place."}),
        )

    script(stack, verdict, Reply.text("done"))
    note, result = await ask(stack, mr, DEVELOPER, "Fixed in the last push.", discussion=thread_id)
    assert result["status"] == "replied" and result["resolved"] is True
    thread = thread_of(stack, mr, note.id)
    assert [n["author"]["username"] for n in thread["notes"]] == [AGENT, DEVELOPER, AGENT]
    assert "**Resolved**: b is checked now." in thread["notes"][-1]["body"]
    assert all(n["resolved"] for n in thread["notes"] if n["resolvable"])

    # A reply in a human's thread without a mention is not the agent's business.
    human = stack.gitlab.add_note("group/app", mr.iid, DEVELOPER, "Should we rename div?")
    other, ignored = await ask(
        stack, mr, "reporter", "Yes please.", discussion=thread_of(stack, mr, human.id)["id"]
    )
    assert ignored["status"] == "ignored" and "nor replies in a thread of the agent" in ignored["reason"]
    assert not agent_replies(thread_of(stack, mr, other.id))


async def test_reporter_asking_for_a_change_gets_an_explanation_and_nothing_is_pushed(stack, mr):
    def explain(request: ChatRequest) -> Reply:
        assert (
            "You cannot change files here" in request.prompt and "needs at least developer" in request.prompt
        )
        return Reply.call(REQUEST_TOOL, body="I would add `if b == 0: raise ValueError`, but I may not push.")

    script(stack, explain, Reply.text("ok"))
    before = stack.gitlab.branch_sha("group/app", "feature")
    note, result = await ask(stack, mr, "reporter", "@copilot-agent please guard div against zero")
    assert result["status"] == "replied" and result["push"] == "none"
    assert stack.gitlab.branch_sha("group/app", "feature") == before
    assert not WRITE_TOOLS & set(discussion_requests(stack)[0].tools)  # read-only run
    assert "I may not push" in agent_replies(thread_of(stack, mr, note.id))[0]["body"]


def _make_test_file(request: ChatRequest) -> Reply:
    return Reply.call("create", path=TEST_FILE, file_text=TEST_TEXT)


def _report_and_reply(request: ChatRequest) -> Reply:
    created = [r for r in request.tool_results if r.name == "create"]
    assert created and created[-1].content.startswith("Created file"), created
    return Reply.calls(
        ("discussion-report_change", {"commit_type": "test", "summary": "Add a test for div\n\nCovers 6/3."}),
        (REQUEST_TOOL, {"body": "Added a test for `div`."}),
    )


async def test_developer_change_is_committed_pushed_and_reviewed_next(stack, mr):
    script(stack, _make_test_file, _report_and_reply, Reply.text("done"))
    before = stack.gitlab.branch_sha("group/app", "feature")
    note, result = await ask(stack, mr, DEVELOPER, "@copilot-agent please add a test for div")
    assert result["status"] == "replied" and result["push"] == "pushed"

    head = stack.gitlab.branch_sha("group/app", "feature")
    repo = stack.gitlab.store.project("group/app").repo
    commit = repo.commit_info(head)
    assert head == result["commit_sha"] and commit.parents == [before]
    assert commit.message.startswith("test: Add a test for div\n\nCovers 6/3.")
    assert f"Requested-by: @{DEVELOPER} (note {note.id})" in commit.message
    assert (commit.author_name, commit.author_email) == (
        stack.settings.agent_author_name,
        stack.settings.agent_author_email,
    )
    assert repo.read_blob(head, TEST_FILE) == TEST_TEXT.encode()
    assert not any(p.forced for p in stack.gitlab.push_log)
    reply = agent_replies(thread_of(stack, mr, note.id))[0]["body"]
    assert reply.startswith("Added a test for `div`.") and f"Pushed `{head[:12]}` to `feature`" in reply

    # The push moved the MR head: the normal review of the new SHA follows, and the agent's own
    # reply did not start a conversation with itself.
    await wait_workflow(stack.client, review_id(project_id(stack), mr.iid, head), timeout=60)
    assert stack.gitlab.wait_webhooks()
    reply_id = agent_replies(thread_of(stack, mr, note.id))[0]["id"]
    with pytest.raises(Exception, match="not found"):
        await stack.client.get_workflow_handle(discussion_id(project_id(stack), reply_id)).describe()


@pytest.mark.parametrize(
    ("their_change", "outcome"),
    [({"README.md": "# Sample, edited\n"}, "rebased"), ({TEST_FILE: "# theirs\n"}, "branch_moved")],
)
async def test_branch_moved_during_the_run(stack, mr, their_change, outcome):
    def edit_meanwhile(request: ChatRequest) -> Reply:
        stack.gitlab.commit("group/app", "feature", their_change, "docs: meanwhile", author=DEVELOPER)
        return _make_test_file(request)

    script(stack, edit_meanwhile, _report_and_reply, Reply.text("done"))
    note, result = await ask(stack, mr, DEVELOPER, "@copilot-agent please add a test for div")
    assert result["push"] == outcome
    head = stack.gitlab.branch_sha("group/app", "feature")
    repo = stack.gitlab.store.project("group/app").repo
    reply = agent_replies(thread_of(stack, mr, note.id))[0]["body"]
    if outcome == "rebased":
        assert head == result["commit_sha"]
        assert repo.commit_info(repo.commit_info(head).parents[0]).message.startswith("docs: meanwhile")
        assert "I rebased my commit onto it and pushed" in reply
    else:
        assert repo.commit_info(head).message.startswith("docs: meanwhile")  # theirs stays the tip
        assert "changed while I worked" in reply and "pushed nothing" in reply
    assert re.search(r"`feature`", reply)
