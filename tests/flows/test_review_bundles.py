"""A large MR reviewed in bundles: ReviewMR fans out into ReviewBundle children (each a real Copilot
CLI run under the project's slots), merges their findings and publishes once, with a per-file
coverage table; a failed bundle, a superseding push and the per-MR caps are said, never hidden."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.review import ReviewActivities
from contracts.models import ReviewMRResult, ReviewRunInput
from contracts.slots import SlotsState, slots_id
from core import markers
from devenv.stack import DEVELOPER, Stack, running_service
from executors.base import make_executor
from standins.brains import DemoBrain
from standins.model_server import ChatRequest, Reply
from tests.flows.helpers import agent_notes, head_sha, inline_discussions, project_id, wait_workflow
from tests.flows.test_review_failures import start_review

DIRS = 10


@pytest.fixture
def settings_overrides() -> dict:
    # A small run budget, so a few hundred one-line files need several bundles.
    return {"review_max_diff_lines": 150, "max_agent_runs_per_project": 2}


def big_mr(stack, files: int = 300, prints: tuple[int, ...] = (5, 150, 290), branch: str = "big"):
    """`files` new one-line modules in DIRS directories; those in `prints` hold a debug print."""
    content = {
        f"pkg{i % DIRS}/mod_{i:03d}.py": (f"print({i})\n" if i in prints else f"VALUE_{i} = {i}\n")
        for i in range(files)
    }
    stack.gitlab.commit("group/app", branch, content, "feat: many modules", author=DEVELOPER)
    return stack.gitlab.create_mr("group/app", branch, title="Many modules", author=DEVELOPER), content


def summary_of(stack, iid: int) -> str:
    (note,) = [n for n in agent_notes(stack, iid) if markers.parse(n["body"], markers.SUMMARY)]
    return note["body"]


async def bundle_statuses(stack, parent: str, count: int) -> list[WorkflowExecutionStatus]:
    return [
        (await stack.client.get_workflow_handle(f"{parent}:bundle-{k}-of-{count}").describe()).status
        for k in range(1, count + 1)
    ]


def bundle_number(request: ChatRequest) -> int:
    match = re.search(r"bundle (\d+) of \d+", request.prompt)
    return int(match.group(1)) if match else 0


async def test_a_300_file_mr_is_reviewed_in_bundles_and_every_file_is_covered(stack):
    stack.model.brain.brain = DemoBrain()  # reports the debug prints it sees in its diff
    mr, content = big_mr(stack)
    workflow_id = await start_review(stack, mr.iid)
    result = await stack.client.get_workflow_handle(workflow_id, result_type=ReviewMRResult).result()
    assert result.status == "posted", result
    assert result.posted is not None and result.posted.inline == 3

    assert await bundle_statuses(stack, workflow_id, 2) == [WorkflowExecutionStatus.COMPLETED] * 2
    # The review asked for a slot while it prepared; fanning out, it gave it back unused: the day
    # counts the bundles' two runs, and nothing is left holding or waiting.
    slots = stack.client.get_workflow_handle(slots_id(stack.settings.temporal_task_queue, project_id(stack)))
    state = await slots.query("state", result_type=SlotsState)
    assert (state.granted_today, state.holders, state.waiting) == (2, [], [])
    seen = {int(m) for r in stack.model.requests for m in re.findall(r"bundle (\d+) of 2", str(r.messages))}
    assert seen == {1, 2}  # two agent sessions, each told which bundle it reviews

    inline = inline_discussions(stack, mr.iid)
    assert sorted(d["notes"][0]["position"]["new_path"] for d in inline) == [
        "pkg0/mod_150.py",
        "pkg0/mod_290.py",
        "pkg5/mod_005.py",
    ]
    body = summary_of(stack, mr.iid)
    assert (
        "in 2 bundles" in body
        and "300 of 300 changed files reviewed, 0 partly reviewed, 0 not reviewed" in body
    )
    assert "incomplete" not in body
    for path in content:
        assert f"| `{path}` | reviewed |" in body

    # A follow-up push is incremental: only the new commits' files are planned into bundles.
    changed = {p: "VALUE = 'changed'\n" for p in content if p.startswith(("pkg1/", "pkg2/", "pkg3/"))}
    new_head = stack.gitlab.commit("group/app", "big", changed, "fix: 90 modules", author=DEVELOPER)
    activities = ReviewActivities(stack.settings, make_executor(stack.settings))
    prep = await asyncio.to_thread(
        activities.prepare_review,
        ReviewRunInput(project_id=project_id(stack), mr_iid=mr.iid, head_sha=new_head, workflow_id="w"),
    )
    assert prep.last_reviewed_sha == result.head_sha
    planned = [p for b in prep.bundles for p in b.files]
    assert len(prep.bundles) == 2 and sorted(planned) == sorted(changed)  # 180 changed lines, 150 a run


class FailingBundle:
    """The demo model, except in bundle `number`, where it never finishes its review (the run
    ends without the required report: AgentNoResult, retried by the agent policy, then failed)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.demo = DemoBrain()

    def __call__(self, request: ChatRequest) -> Reply:
        if bundle_number(request) == self.number:
            return Reply.text("I would rather not review this bundle.")
        return self.demo(request)


async def test_a_failed_bundle_leaves_the_others_delivered_and_the_caps_are_disclosed(
    gitlab, users, model, brain, make_settings
):
    # 120 files in 10 directories of 12 lines: three bundles; the cap allows two, bundle 2 fails.
    settings = make_settings(review_max_diff_lines=50, review_max_bundles=2, max_agent_runs_per_project=2)
    brain.brain = FailingBundle(2)
    stack = Stack(settings=settings, client=None, gitlab=gitlab, model=model, api_url="")  # type: ignore[arg-type]
    mr, content = big_mr(stack, files=120, prints=(0, 1))
    async with running_service(settings) as (client, _):
        stack.client = client
        workflow_id = await start_review(stack, mr.iid)
        result = await client.get_workflow_handle(workflow_id, result_type=ReviewMRResult).result()
        statuses = await bundle_statuses(stack, workflow_id, 2)
    assert statuses == [WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.FAILED]
    assert result.status == "failed"
    assert "bundle 2 of 2" in result.reason and "the agent finished without a review" in result.reason
    assert result.posted is not None and result.posted.inline == 2  # bundle 1's findings are delivered
    body = summary_of(stack, mr.iid)
    assert "This review is incomplete" in body
    assert "needs 3 review bundles; REVIEW_MAX_BUNDLES=2 allows 2, so 1 bundle(s) were not reviewed" in body
    assert (
        "Bundle 2 of 2 (48 files): the agent finished without a review; its files were not reviewed" in body
    )
    rows = dict(re.findall(r"^\| `([^`]+)` \| (.+) \|$", body, re.MULTILINE))
    assert set(rows) == set(content)  # every file has its line
    statuses_by_file = {path: row.split(":")[0] for path, row in rows.items()}
    assert set(statuses_by_file.values()) == {"reviewed", "not reviewed"}
    assert any("over REVIEW_MAX_BUNDLES=2" in row for row in rows.values())
    assert any(
        "bundle 2 of 2 was not reviewed: the agent finished without a review" in r for r in rows.values()
    )


class HeldBrain:
    """The demo model, holding every request of the reviews of `sha` until released."""

    def __init__(self, sha: str) -> None:
        self.sha, self.release, self.held = sha[:8], threading.Event(), 0
        self.demo = DemoBrain()

    def __call__(self, request: ChatRequest) -> Reply:
        if self.sha in request.prompt:
            self.held += 1
            self.release.wait(60)
        return self.demo(request)


async def test_a_push_during_the_fan_out_cancels_the_bundles_and_nothing_stale_is_published(stack):
    mr, _ = big_mr(stack, files=200, prints=(0, 199))
    old = head_sha(stack, mr.iid)
    held = HeldBrain(old)
    stack.model.brain.brain = held
    try:
        stale_id = await start_review(stack, mr.iid)
        for _ in range(300):  # both bundles' agents are talking to the model
            if held.held >= 2:
                break
            await asyncio.sleep(0.2)
        assert held.held >= 2
        stack.gitlab.commit("group/app", "big", {"pkg0/mod_000.py": "VALUE = 0\n"}, "fix", author=DEVELOPER)
        fresh_id = await start_review(stack, mr.iid)
        stale = await wait_workflow(stack.client, stale_id)
        assert stale.status == WorkflowExecutionStatus.CANCELED
        assert await bundle_statuses(stack, stale_id, 2) == [WorkflowExecutionStatus.CANCELED] * 2
        fresh = await stack.client.get_workflow_handle(fresh_id, result_type=ReviewMRResult).result()
    finally:
        held.release.set()
    assert fresh.status == "posted"
    new = head_sha(stack, mr.iid)
    assert markers.parse(summary_of(stack, mr.iid), markers.SUMMARY) == {"last_reviewed_sha": new}
    found = [
        markers.parse(d["notes"][0]["body"], markers.FINDING)
        for d in stack.gitlab.discussions("group/app", mr.iid)
    ]
    assert [f["sha"] for f in found if f] == [new]  # the fresh review's one finding (mod_199), none stale
