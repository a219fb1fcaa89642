# ruff: noqa: F811 - pytest fixtures imported from implement_support are redefined as parameters
"""The polling Schedules: created by `bootstrap`, fired by the real Temporal server, one poll at a
time; the GitLab poller starts reviews under the webhook's IDs and carries its watermark from one
scheduled run to the next as the last completion result."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest
from temporalio.client import Client, ScheduleOverlapPolicy

from bootstrap import bootstrap
from contracts.ids import GITLAB_POLL_SCHEDULE_ID, JIRA_POLL_SCHEDULE_ID, implement_id
from devenv.stack import DEVELOPER, WEBHOOK_SECRET
from tests.flows.helpers import finding, finish, head_sha, project_id, wait_review, wait_workflow
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

pytestmark = pytest.mark.flow


async def delete_schedule(client: Client, schedule_id: str) -> None:
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except Exception:  # noqa: BLE001 - not there
        pass


async def schedule_results(client: Client, schedule_id: str, count: int, timeout: float = 60) -> list[dict]:
    """Results of the first `count` runs the Schedule started (waiting for them to finish)."""
    handle = client.get_schedule_handle(schedule_id)
    deadline = time.monotonic() + timeout
    while True:
        actions = (await handle.describe()).info.recent_actions
        if len(actions) >= count:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{schedule_id} started {len(actions)} runs, not {count}")
        await asyncio.sleep(0.3)
    results = []
    for action in actions[:count]:
        started = action.action
        results.append(await client.get_workflow_handle(started.workflow_id).result())
    return results


class TestJiraSchedule:
    @pytest.fixture
    def settings_overrides(self, jira, jira_project) -> dict:
        return {**jira_settings(jira, jira_project), "jira_poll_interval": 5}

    async def test_schedule_fires_and_implements_the_issue(self, stack, jira, jira_project, svc_repo):
        key = jira.create_issue(jira_project, "Add multiplication", "Multiply.", status="AI Ready")
        stack.model.brain.brain.when(
            *agent_writes(
                {"mul.py": "def mul(a, b):\n    return a * b\n", "tests/test_mul.py": MUL_TEST},
                summary="Added mul.",
                subject="add mul",
            ),
            tool_offered="implementer-report_implementation",
        )
        await delete_schedule(stack.client, JIRA_POLL_SCHEDULE_ID)
        try:
            await bootstrap(stack.settings)
            handle = stack.client.get_schedule_handle(JIRA_POLL_SCHEDULE_ID)
            description = await handle.describe()
            assert description.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
            assert description.schedule.spec.intervals[0].every == timedelta(seconds=5)
            # No trigger by hand: the Schedule itself fires within its 5 s interval.
            await wait_workflow(stack.client, implement_id(key), timeout=90)
            result = await stack.client.get_workflow_handle(implement_id(key)).result()
            assert result["status"] == "in_review"
            assert file_at(stack.gitlab, f"agent/{key.lower()}", "mul.py") is not None
            assert jira.issue(key).status == "In Review" and len(mrs_of(stack.gitlab)) == 1

            # An operator's pause survives a re-bootstrap (e.g. the next Helm upgrade).
            await handle.pause(note="paused by an operator")
            await bootstrap(stack.settings)
            assert (await handle.describe()).schedule.state.paused
        finally:
            await delete_schedule(stack.client, JIRA_POLL_SCHEDULE_ID)


class TestGitLabPoller:
    @pytest.fixture
    def settings_overrides(self) -> dict:
        return {"gitlab_poll": True, "gitlab_projects": ["group/app"], "gitlab_poll_interval": 3600}

    async def test_poller_never_doubles_a_webhook_review_and_carries_its_watermark(self, stack):
        stack.model.brain.brain.when(
            finding("app/calc.py", 2, "A finding"), finish(), tool_offered="reviewer-finish_review"
        )
        stack.gitlab.set_webhook(f"{stack.api_url}/webhook", WEBHOOK_SECRET)
        stack.gitlab.commit("group/app", "feature", {"app/calc.py": "def add(a, b):\n    return b + a\n"},
                            "swap", author=DEVELOPER)  # fmt: skip
        mr = stack.gitlab.create_mr("group/app", "feature", title="Swap", author=DEVELOPER)
        review_id, _ = await wait_review(stack, mr.iid)
        stack.gitlab.set_webhook(None)  # from here on only the poller can find work
        stack.gitlab.commit("group/app", "wip", {"README.md": "# WIP\n"}, "wip", author=DEVELOPER)
        stack.gitlab.create_mr("group/app", "wip", title="Draft: wip", author=DEVELOPER)

        await delete_schedule(stack.client, GITLAB_POLL_SCHEDULE_ID)
        try:
            await bootstrap(stack.settings)
            handle = stack.client.get_schedule_handle(GITLAB_POLL_SCHEDULE_ID)
            await handle.trigger()
            (first,) = await schedule_results(stack.client, GITLAB_POLL_SCHEDULE_ID, 1)
            assert first["started"] == [] and first["duplicates"] == 1 and first["skipped"] == 1
            assert first["watermark"] is not None

            # A new MR only the poller sees: reviewed, under the same ID a webhook would have used.
            stack.gitlab.commit("group/app", "other", {"app/util.py": "X = 1\n"}, "x", author=DEVELOPER)
            other = stack.gitlab.create_mr("group/app", "other", title="Other", author=DEVELOPER)
            await handle.trigger()
            _, second = await schedule_results(stack.client, GITLAB_POLL_SCHEDULE_ID, 2)
            expected = f"review:{project_id(stack)}:{other.iid}:{head_sha(stack, other.iid)}"
            assert second["started"] == [expected]
            # The second run started from the first run's watermark (its last completion result).
            since = datetime.fromisoformat(second["since"])
            assert since == datetime.fromisoformat(first["watermark"]) - timedelta(minutes=2)
            await wait_review(stack, other.iid)
        finally:
            await delete_schedule(stack.client, GITLAB_POLL_SCHEDULE_ID)
        runs = [w async for w in stack.client.list_workflows(f"WorkflowId = '{review_id}'")]
        assert len(runs) == 1
