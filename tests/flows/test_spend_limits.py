"""Spend and fairness (security review findings 7 and 15), enforced before an agent slot is taken and
explained in the MR: who gets an answer, answer rates, the daily cap, the bounded queue where
reviews go first, the cost of a reply in a human thread, and who may dismiss a finding."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus

from contracts.ids import discussion_id, review_id
from contracts.slots import SlotsState, slots_id
from devenv.stack import AGENT, DEVELOPER
from standins.model_server import ChatRequest, Reply, ScriptedBrain
from tests.flows.helpers import finding, finish, head_sha, project_id, wait_workflow

REPLY = "discussion-reply"
NEW_CALC = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\ndef div(a, b):\n    return a / b\n"


@pytest.fixture
def open_mr(stack):
    stack.gitlab.store._ids["note"] = uuid.uuid4().int % 10**12 * 1000  # unique workflow IDs
    stack.gitlab.commit("group/app", "feature", {"app/calc.py": NEW_CALC}, "feat: div", author=DEVELOPER)
    return stack.gitlab.create_mr("group/app", "feature", title="Add div", author=DEVELOPER)


def answering(stack) -> None:
    stack.model.brain.brain = ScriptedBrain().when(Reply.call(REPLY, body="An answer."), tool_offered=REPLY)


async def start_note(stack, mr, user: str, body: str, discussion: str | None = None) -> tuple[int, str]:
    note = stack.gitlab.add_note("group/app", mr.iid, user, body, discussion_id=discussion)
    workflow_id = discussion_id(project_id(stack), note.id)
    await stack.client.start_workflow(
        "MRDiscussion",
        {"project_id": project_id(stack), "mr_iid": mr.iid, "note_id": note.id, "discussion_id": discussion},
        id=workflow_id,
        task_queue=stack.settings.temporal_task_queue,
    )
    return note.id, workflow_id


async def result_of(stack, workflow_id: str, timeout: float = 90) -> dict:
    description = await wait_workflow(stack.client, workflow_id, timeout=timeout)
    assert description.status == WorkflowExecutionStatus.COMPLETED, description.status
    return await stack.client.get_workflow_handle(workflow_id).result()


def agent_bodies(stack, mr) -> list[str]:
    return [n["body"] for n in stack.gitlab.notes("group/app", mr.iid) if n["author"]["username"] == AGENT]


def sessions(stack, tool: str = REPLY) -> int:
    return sum(1 for r in stack.model.requests if tool in r.tools and r.messages[-1].get("role") == "user")


async def test_non_member_mentions_get_no_agent_run_and_one_notice(stack, open_mr):
    stack.gitlab.add_user("outsider")
    answering(stack)
    results = []
    for n in range(2):
        _, workflow_id = await start_note(stack, open_mr, "outsider", f"@{AGENT} explain line {n}")
        results.append(await result_of(stack, workflow_id))
    assert [r["status"] for r in results] == ["limited", "limited"]
    assert "DISCUSSION_MIN_ACCESS" in results[0]["reason"] and sessions(stack) == 0
    notices = [b for b in agent_bodies(stack, open_mr) if "DISCUSSION_MIN_ACCESS" in b]
    assert len(notices) == 1 and "I answer members with at least the reporter role" in notices[0]


@pytest.mark.parametrize("settings_overrides", [{"discussion_rate_per_user": 2}])
async def test_spam_over_the_per_user_rate_is_refused_before_the_agent_runs(stack, open_mr):
    answering(stack)
    statuses = []
    for n in range(3):
        _, workflow_id = await start_note(stack, open_mr, DEVELOPER, f"@{AGENT} question {n}")
        statuses.append((await result_of(stack, workflow_id))["status"])
    assert statuses == ["replied", "replied", "limited"] and sessions(stack) == 2
    notice = [b for b in agent_bodies(stack, open_mr) if "DISCUSSION_RATE_PER_USER" in b]
    assert len(notice) == 1 and f"@{DEVELOPER} had 2 answers from me" in notice[0]


@pytest.mark.parametrize("settings_overrides", [{"agent_runs_per_project_per_day": 1}])
async def test_daily_cap_of_agent_runs(stack, open_mr):
    answering(stack)
    _, first = await start_note(stack, open_mr, DEVELOPER, f"@{AGENT} one")
    assert (await result_of(stack, first))["status"] == "replied"
    _, second = await start_note(stack, open_mr, DEVELOPER, f"@{AGENT} two")
    result = await result_of(stack, second)
    assert result["status"] == "limited" and "AGENT_RUNS_PER_PROJECT_PER_DAY" in result["reason"]
    assert sessions(stack) == 1
    assert any("reached its 1 agent runs for today" in b for b in agent_bodies(stack, open_mr))


@pytest.mark.parametrize(
    "settings_overrides", [{"max_agent_runs_per_project": 1, "max_queued_agent_runs_per_project": 1}]
)
async def test_full_queue_refuses_answers_and_a_review_takes_a_waiting_answers_place(stack, open_mr):
    release = threading.Event()

    def held(request: ChatRequest) -> Reply:
        release.wait(60)  # the first answer holds the project's only slot
        return Reply.call(REPLY, body="Held answer.")

    stack.model.brain.brain = (
        ScriptedBrain()
        .when(held, tool_offered=REPLY)
        .when(finish("Reviewed."), tool_offered="reviewer-finish_review")
    )
    pid, queue = project_id(stack), stack.settings.temporal_task_queue
    slots = stack.client.get_workflow_handle(slots_id(queue, pid))

    async def state_is(predicate) -> SlotsState:
        for _ in range(300):
            try:
                state = await slots.query("state", result_type=SlotsState)
                if predicate(state):
                    return state
            except Exception:  # noqa: BLE001 - not started yet
                pass
            await asyncio.sleep(0.1)
        raise AssertionError("slots never reached the expected state")

    _, holder = await start_note(stack, open_mr, DEVELOPER, f"@{AGENT} first")
    await state_is(lambda s: s.holders == [holder])
    _, waiting = await start_note(stack, open_mr, DEVELOPER, f"@{AGENT} second")
    await state_is(lambda s: s.waiting == [waiting])
    _, refused = await start_note(stack, open_mr, "reporter", f"@{AGENT} third")
    third = await result_of(stack, refused)
    assert third["status"] == "limited" and "MAX_QUEUED_AGENT_RUNS_PER_PROJECT=1" in third["reason"]

    review = review_id(pid, open_mr.iid, head_sha(stack, open_mr.iid))
    await stack.client.start_workflow(
        "ReviewMR", {"project_id": pid, "mr_iid": open_mr.iid}, id=review, task_queue=queue
    )
    second = await result_of(stack, waiting)  # the review took its place in the queue
    assert second["status"] == "limited" and "agent runs waiting" in second["reason"]
    await state_is(lambda s: s.waiting == [review])
    release.set()
    assert (await result_of(stack, holder))["status"] == "replied"
    assert (await result_of(stack, review))["status"] == "posted"
    notices = [b for b in agent_bodies(stack, open_mr) if "agent runs waiting" in b]
    assert len(notices) == 1  # one notice per limit key, not one per refused note


async def test_human_reply_in_a_human_thread_costs_no_run_and_one_gitlab_call(stack, open_mr):
    answering(stack)
    human = stack.gitlab.add_note("group/app", open_mr.iid, DEVELOPER, "Should we rename div?")
    thread = next(
        d["id"] for d in stack.gitlab.discussions("group/app", open_mr.iid) if d["notes"][0]["id"] == human.id
    )
    # Warm the worker's identity lookup (done once per worker), then count one reply's cost.
    _, warm = await start_note(stack, open_mr, "reporter", "+1", discussion=thread)
    await result_of(stack, warm)
    before = len(stack.gitlab.requests)
    _, workflow_id = await start_note(stack, open_mr, "reporter", "Agreed.", discussion=thread)
    result = await result_of(stack, workflow_id)
    assert result["status"] == "ignored" and sessions(stack) == 0
    calls = [r for r in stack.gitlab.requests[before:] if r.user == AGENT]
    assert len(calls) == 1, [(r.method, r.path) for r in calls]


async def test_non_members_by_design_does_not_silence_a_finding(stack, open_mr):
    stack.gitlab.add_user("outsider")
    stack.model.brain.brain = ScriptedBrain().when(
        finding("app/calc.py", 10, "Division by zero"), finish(), tool_offered="reviewer-finish_review"
    )
    pid, queue = project_id(stack), stack.settings.temporal_task_queue
    first = review_id(pid, open_mr.iid, head_sha(stack, open_mr.iid))
    await stack.client.start_workflow(
        "ReviewMR", {"project_id": pid, "mr_iid": open_mr.iid}, id=first, task_queue=queue
    )
    await result_of(stack, first)
    thread = next(
        d
        for d in stack.gitlab.discussions("group/app", open_mr.iid)
        if d["notes"][0].get("type") == "DiffNote"
    )
    _, dismissal = await start_note(
        stack, open_mr, "outsider", "Won't fix, this is by design.", discussion=thread["id"]
    )
    assert (await result_of(stack, dismissal))["status"] == "limited"  # not a member: no answer either

    stack.model.requests.clear()
    stack.gitlab.commit("group/app", "feature", {"README.md": "# Sample 2\n"}, "docs", author=DEVELOPER)
    second = review_id(pid, open_mr.iid, head_sha(stack, open_mr.iid))
    await stack.client.start_workflow(
        "ReviewMR", {"project_id": pid, "mr_iid": open_mr.iid}, id=second, task_queue=queue
    )
    await result_of(stack, second)
    prompt = next(
        str(r.messages[-1]["content"]) for r in stack.model.requests if "reviewer-finish_review" in r.tools
    )
    assert f"thread_id `{thread['id']}`" in prompt  # still open earlier feedback, to be judged again
    assert '<untrusted source="dismissed">' not in prompt


@pytest.mark.parametrize("settings_overrides", [{"agent_tokens_per_project_per_day": 1}])
async def test_daily_token_budget_refuses_the_run_after_the_budget_is_spent(stack, open_mr):
    """Each run reports the model tokens it used (the model server's usage counts) when it releases
    its slot; once the project's runs of the day used the budget, the next request gets no run."""
    answering(stack)
    _, first = await start_note(stack, open_mr, DEVELOPER, f"@{AGENT} one")
    assert (await result_of(stack, first))["status"] == "replied"
    slots = stack.client.get_workflow_handle(slots_id(stack.settings.temporal_task_queue, project_id(stack)))
    state = await slots.query("state", result_type=SlotsState)
    assert state.token_cap == 1 and state.tokens_today > 1 and state.day  # the budget state is queryable
    _, second = await start_note(stack, open_mr, DEVELOPER, f"@{AGENT} two")
    result = await result_of(stack, second)
    assert result["status"] == "limited" and "AGENT_TOKENS_PER_PROJECT_PER_DAY" in result["reason"]
    assert sessions(stack) == 1  # the second request cost no agent run
    notices = [b for b in agent_bodies(stack, open_mr) if "AGENT_TOKENS_PER_PROJECT_PER_DAY" in b]
    assert len(notices) == 1 and "of its 1 model tokens for today" in notices[0]


@pytest.mark.parametrize("settings_overrides", [{"fork_reviews_per_author_per_day": 1}])
async def test_fork_author_over_the_daily_cap_gets_no_review_and_a_note(stack):
    """An outsider's fork MRs: the first is reviewed, the second gets no agent run and a note; an MR
    from the project itself is not counted against anyone."""
    stack.gitlab.add_user("forker")
    fork = stack.gitlab.store.project("group/app").id + 1000
    stack.model.brain.brain = ScriptedBrain().when(finish("Reviewed."), tool_offered="reviewer-finish_review")
    pid, queue = project_id(stack), stack.settings.temporal_task_queue
    mrs = []
    for n in (1, 2):
        stack.gitlab.commit("group/app", f"fork-{n}", {"app/calc.py": NEW_CALC + f"# {n}\n"}, "feat")
        mrs.append(
            stack.gitlab.create_mr(
                "group/app", f"fork-{n}", title=f"Fork {n}", author="forker", fork_project_id=fork
            )
        )
    results = []
    for mr in mrs:
        workflow_id = review_id(pid, mr.iid, head_sha(stack, mr.iid))
        await stack.client.start_workflow(
            "ReviewMR", {"project_id": pid, "mr_iid": mr.iid}, id=workflow_id, task_queue=queue
        )
        results.append(await result_of(stack, workflow_id))
    # The refused author pushes again to the second MR: still no review, and no second note.
    stack.gitlab.commit("group/app", "fork-2", {"app/calc.py": NEW_CALC + "# again\n"}, "feat: again")
    workflow_id = review_id(pid, mrs[1].iid, head_sha(stack, mrs[1].iid))
    await stack.client.start_workflow(
        "ReviewMR", {"project_id": pid, "mr_iid": mrs[1].iid}, id=workflow_id, task_queue=queue
    )
    results.append(await result_of(stack, workflow_id))
    assert [r["status"] for r in results] == ["posted", "limited", "limited"]
    assert "FORK_REVIEWS_PER_AUTHOR_PER_DAY" in results[1]["reason"]
    reviews = sum(
        1
        for r in stack.model.requests
        if r.messages[-1].get("role") == "user" and "reviewer-finish_review" in r.tools
    )
    assert reviews == 1  # the second fork MR cost no agent run
    notes = [b for b in agent_bodies(stack, mrs[1]) if "FORK_REVIEWS_PER_AUTHOR_PER_DAY" in b]
    assert len(notes) == 1 and "forker already had 1 reviews of merge requests from forks" in notes[0]
    assert not any("FORK_REVIEWS" in b for b in agent_bodies(stack, mrs[0]))
    slots = stack.client.get_workflow_handle(slots_id(queue, pid))
    assert (await slots.query("state", result_type=SlotsState)).fork_reviews_today == {"forker": 1}
