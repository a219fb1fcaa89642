"""ReviewMR under failure: GitLab errors, rejected positions, a permanent failure, a killed worker."""

from __future__ import annotations

import asyncio

from temporalio.client import WorkflowExecutionStatus

from activities.review import ReviewActivities
from contracts.ids import review_id
from contracts.models import ReviewMRInput, ReviewMRResult, Trigger
from contracts.temporal import review_search_attributes
from core import markers
from devenv.stack import DEVELOPER, running_service
from devenv.worker_process import WorkerProcess
from executors.base import make_executor
from tests.flows.helpers import (
    agent_notes,
    finding,
    finish,
    head_sha,
    inline_discussions,
    project_id,
    wait_workflow,
)
from tests.flows.test_review_flow import NEW_CALC


async def start_review(stack, iid: int):
    pid, sha = project_id(stack), head_sha(stack, iid)
    workflow_id = review_id(pid, iid, sha)
    await stack.client.start_workflow(
        "ReviewMR",
        ReviewMRInput(project_id=pid, mr_iid=iid, head_sha=sha, trigger=Trigger.WEBHOOK),
        id=workflow_id,
        task_queue=stack.settings.temporal_task_queue,
        search_attributes=review_search_attributes(pid, iid, sha, "webhook"),
    )
    return workflow_id


def open_mr(gitlab):
    gitlab.commit("group/app", "feature", {"app/calc.py": NEW_CALC}, "feat: add div", author=DEVELOPER)
    return gitlab.create_mr("group/app", "feature", title="Add div", author=DEVELOPER)


async def test_gitlab_500_502_and_429_are_retried_and_comments_land_once(stack):
    stack.model.brain.brain.when(
        finding("app/calc.py", 10, "Division by zero"),
        finding("app/calc.py", 9, "Missing docstring", severity="minor"),
        finish(),
        tool_offered="reviewer-finish_review",
    )
    mr = open_mr(stack.gitlab)
    stack.gitlab.fail_next(1, 502, path_contains="/merge_requests/1", method="GET")
    stack.gitlab.fail_next(1, 429, retry_after=1, path_contains="/discussions", method="GET")
    stack.gitlab.fail_next(2, 500, path_contains="/draft_notes", method="POST")  # the findings' drafts
    workflow_id = await start_review(stack, mr.iid)
    result = await stack.client.get_workflow_handle(workflow_id, result_type=ReviewMRResult).result()
    assert result.status == "posted"
    titles = sorted(d["notes"][0]["body"].splitlines()[0] for d in inline_discussions(stack, mr.iid))
    assert titles == ["**[major]** Division by zero", "**[minor]** Missing docstring"]
    summaries = [n for n in agent_notes(stack, mr.iid) if markers.parse(n["body"], markers.SUMMARY)]
    assert len(summaries) == 1


async def test_a_position_gitlab_rejects_becomes_a_general_comment_and_is_counted(stack):
    stack.model.brain.brain.when(
        finding("app/calc.py", 10, "Division by zero"), finish(), tool_offered="reviewer-finish_review"
    )
    mr = open_mr(stack.gitlab)
    # GitLab refuses the inline draft note's position (a review goes out as one batch of drafts).
    stack.gitlab.fail_next(1, 400, path_contains="/draft_notes", method="POST")
    workflow_id = await start_review(stack, mr.iid)
    result = await stack.client.get_workflow_handle(workflow_id, result_type=ReviewMRResult).result()
    assert result.posted.rejected_positions == 1 and result.posted.fallback == 1 and result.posted.inline == 0
    bodies = [d["notes"][0]["body"] for d in stack.gitlab.discussions("group/app", mr.iid)]
    fallback = [b for b in bodies if b.startswith("**[major]** Division by zero")]
    assert len(fallback) == 1 and "`app/calc.py:10`" in fallback[0]


async def test_a_permanent_failure_posts_one_secret_free_failure_note(
    task_queue, gitlab, users, make_settings
):
    settings = make_settings(copilot_cli_path="/nonexistent/copilot")
    mr = open_mr(gitlab)
    async with running_service(settings) as (client, _):
        pid, sha = gitlab.store.project("group/app").id, gitlab.mr_json("group/app", mr.iid)["sha"]
        workflow_id = review_id(pid, mr.iid, sha)
        await client.start_workflow(
            "ReviewMR",
            ReviewMRInput(project_id=pid, mr_iid=mr.iid, head_sha=sha),
            id=workflow_id,
            task_queue=task_queue,
            search_attributes=review_search_attributes(pid, mr.iid, sha, "manual"),
        )
        description = await wait_workflow(client, workflow_id)
    assert description.status == WorkflowExecutionStatus.FAILED
    notes = [n for n in gitlab.notes("group/app", mr.iid) if markers.parse(n["body"], markers.FAILURE)]
    assert len(notes) == 1
    body = notes[0]["body"]
    assert workflow_id in body and "misconfigured" in body
    assert "Traceback" not in body and users.agent_token not in body
    # A second attempt to report the same failure (a retried activity) writes nothing.
    activities = ReviewActivities(settings, make_executor(settings))
    assert activities.post_review_failure(pid, mr.iid, workflow_id, "again") is False
    assert (
        len([n for n in gitlab.notes("group/app", mr.iid) if markers.parse(n["body"], markers.FAILURE)]) == 1
    )
    assert not gitlab.award_emoji("group/app", mr.iid)


async def test_worker_killed_mid_review_completes_once(
    tmp_path, task_queue, gitlab, model, brain, temporal_client, make_settings
):
    from standins.model_server import ScriptedBrain

    brain.brain = ScriptedBrain().when(
        finding("app/calc.py", 10, "Division by zero"), finish(), tool_offered="reviewer-finish_review"
    )
    settings = make_settings()
    mr = open_mr(gitlab)
    pid, sha = gitlab.store.project("group/app").id, gitlab.mr_json("group/app", mr.iid)["sha"]
    workflow_id = review_id(pid, mr.iid, sha)
    model.requests.clear()
    model.stall_next(1, 20)  # the first agent attempt hangs in its first model call
    worker = WorkerProcess(settings, log_file=tmp_path / "worker.log").start()
    try:
        await temporal_client.start_workflow(
            "ReviewMR",
            ReviewMRInput(project_id=pid, mr_iid=mr.iid, head_sha=sha),
            id=workflow_id,
            task_queue=task_queue,
            search_attributes=review_search_attributes(pid, mr.iid, sha, "manual"),
        )
        # Killed while the agent's first model call hangs: the moment the run is mid-flight.
        for _ in range(600):
            if model.stalls_begun:
                break
            await asyncio.sleep(0.1)
        assert model.stalls_begun, "the agent never called the model"
        worker.kill()
        worker.start()
        description = await wait_workflow(temporal_client, workflow_id, timeout=150)
    finally:
        worker.kill()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    inline = [d for d in gitlab.discussions("group/app", mr.iid) if d["notes"][0].get("type") == "DiffNote"]
    assert len(inline) == 1
    summaries = [n for n in gitlab.notes("group/app", mr.iid) if markers.parse(n["body"], markers.SUMMARY)]
    assert len(summaries) == 1
