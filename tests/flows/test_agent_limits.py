"""Per-project agent slots: with MAX_AGENT_RUNS_PER_PROJECT=1, two MRs of one project are reviewed
one after the other, the second visibly queued in the slots workflow's `state` query."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from contracts.ids import review_id
from contracts.models import ReviewMRInput, ReviewMRResult
from devenv.stack import DEVELOPER
from standins.model_server import ChatRequest, Reply
from tests.flows.test_review_flow import NEW_CALC
from workflows.agent_slots import SlotsState, slots_id


class SlowBrain:
    """Each review session takes ~1.5 s of model time; records when sessions run."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, request: ChatRequest) -> Reply:
        if request.turn == 0:
            with self.lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            time.sleep(1.5)
            return Reply.call("reviewer-finish_review", summary="ok")
        with self.lock:
            self.active -= 1
        return Reply.text("done")


@pytest.fixture
def settings_overrides():
    return {"max_agent_runs_per_project": 1}


async def test_one_agent_run_per_project_at_a_time(stack):
    brain = stack.model.brain.brain = SlowBrain()
    gitlab = stack.gitlab
    for n in (1, 2):
        gitlab.commit(
            "group/app", f"feature-{n}", {"app/calc.py": NEW_CALC + f"\n# {n}\n"}, "feat", author=DEVELOPER
        )
        gitlab.create_mr("group/app", f"feature-{n}", title=f"MR {n}", author=DEVELOPER)
    pid = gitlab.store.project("group/app").id
    handles = []
    for iid in (1, 2):
        sha = gitlab.mr_json("group/app", iid)["sha"]
        handles.append(
            await stack.client.start_workflow(
                "ReviewMR",
                ReviewMRInput(project_id=pid, mr_iid=iid, head_sha=sha),
                id=review_id(pid, iid, sha),
                task_queue=stack.settings.temporal_task_queue,
                result_type=ReviewMRResult,
            )
        )
    slots = stack.client.get_workflow_handle(slots_id(stack.settings.temporal_task_queue, pid))
    queued_seen = False
    for _ in range(100):
        try:
            state = await slots.query("state", result_type=SlotsState)
            if state.holders and state.waiting:
                queued_seen = True
                break
        except Exception:  # noqa: BLE001 - not started yet
            pass
        await asyncio.sleep(0.1)
    results = [await h.result() for h in handles]
    assert [r.status for r in results] == ["posted", "posted"]
    assert brain.peak == 1
    assert queued_seen, "the second review was never visible as queued"
