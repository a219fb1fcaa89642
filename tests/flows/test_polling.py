# ruff: noqa: F811 - pytest fixtures imported from implement_support are redefined as parameters
"""The polling Schedules: created by `bootstrap`, fired by the real Temporal server, one poll at a
time; the GitLab poller starts reviews under the webhook's IDs and carries its watermark from one
scheduled run to the next as the last completion result."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta

import pytest
from temporalio.client import Client, ScheduleOverlapPolicy, WorkflowFailureError

from bootstrap import _schedule, bootstrap
from contracts.ids import GITLAB_POLL_SCHEDULE_ID, JIRA_POLL_SCHEDULE_ID, discussion_id, implement_id
from devenv.stack import AGENT, DEVELOPER, WEBHOOK_SECRET
from standins.model_server import Reply
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
    unique_project_key,
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


class TestJiraPollerAllowlist:
    """Seed fix #117: the Jira poller honours GITLAB_PROJECTS."""

    @pytest.fixture
    def settings_overrides(self, jira, jira_project) -> dict:
        unserved = jira_settings(jira, jira_project)  # maps to group/svc
        served = unique_project_key()
        jira.add_project(served, "App")
        unserved["jira_project_map"][served] = {"repo": "group/app", "target_branch": "main"}
        return {**unserved, "gitlab_projects": ["group/app"]}

    async def test_issues_of_a_project_outside_gitlab_projects_are_left_alone(
        self, stack, jira, jira_project, svc_repo
    ):
        left_alone = jira.create_issue(jira_project, "Add mul", "Multiply.", status="AI Ready")
        served = next(k for k in stack.settings.jira_project_map if k != jira_project)
        wanted = jira.create_issue(served, "Add div", "Divide.", status="AI Ready")
        result = await stack.client.execute_workflow(
            "PollJira",
            id=f"poll-jira-allowlist-{jira_project}",
            task_queue=stack.settings.temporal_task_queue,
        )
        assert result["started"] == [wanted] and result["found"] == 1
        assert any(jira_project in e and "GITLAB_PROJECTS" in e for e in result["errors"])
        await stack.client.get_workflow_handle(implement_id(wanted)).terminate("not this test's subject")
        assert jira.issue(left_alone).status == "AI Ready"
        assert [
            w async for w in stack.client.list_workflows(f"WorkflowId = '{implement_id(left_alone)}'")
        ] == []


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

    async def test_failed_polls_back_off_and_the_first_success_ends_it(self, stack):
        """The seed's backoff after failed cycles, with Temporal Schedule semantics: a failed poll's
        count travels to the Schedule's next run in the failure itself; a run inside the doubled
        interval does not poll; once the delay passed the next run polls, and its success ends it."""
        await delete_schedule(stack.client, GITLAB_POLL_SCHEDULE_ID)
        interval_s = 3  # the Schedule's interval as bootstrap passes it: a 6 s delay after one failure
        await stack.client.create_schedule(
            GITLAB_POLL_SCHEDULE_ID,
            _schedule("PollGitLab", GITLAB_POLL_SCHEDULE_ID, 3600, stack.settings, "test",
                      [{"interval_s": interval_s}]),
        )  # fmt: skip
        handle = stack.client.get_schedule_handle(GITLAB_POLL_SCHEDULE_ID)
        try:
            stack.gitlab.fail_next(1000, 401, path_contains="/projects")  # the poll fails at once
            await handle.trigger()
            (first,) = await schedule_outcomes(stack.client, GITLAB_POLL_SCHEDULE_ID, 1)
            assert first[0] == "PollGitLabFailed" and "1 in a row" in first[1], first
            failed_at = time.monotonic()

            await handle.trigger()  # within the delay: no poll at all, the count carried on
            second = (await schedule_outcomes(stack.client, GITLAB_POLL_SCHEDULE_ID, 2))[1]
            assert second[0] == "PollGitLabBackoff" and "1 poll(s) in a row failed" in second[1], second
            assert not [e for e in second[2] if e.HasField("activity_task_scheduled_event_attributes")]

            stack.gitlab.clear_faults()
            await asyncio.sleep(max(0.0, failed_at + 2 * interval_s + 0.5 - time.monotonic()))
            await handle.trigger()
            third = (await schedule_outcomes(stack.client, GITLAB_POLL_SCHEDULE_ID, 3))[2]
            assert third[0] == "ok" and third[1]["errors"] == [], third  # it polled, and it worked
            assert [e for e in third[2] if e.HasField("activity_task_scheduled_event_attributes")]
        finally:
            stack.gitlab.clear_faults()
            await delete_schedule(stack.client, GITLAB_POLL_SCHEDULE_ID)


async def schedule_outcomes(client: Client, schedule_id: str, count: int, timeout: float = 60) -> list:
    """(failure type, message, history events) or ("ok", result, events) of the Schedule's first
    `count` runs, waiting for them to end."""
    handle = client.get_schedule_handle(schedule_id)
    deadline = time.monotonic() + timeout
    while len(actions := (await handle.describe()).info.recent_actions) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{schedule_id} started {len(actions)} runs, not {count}")
        await asyncio.sleep(0.2)
    outcomes = []
    for action in actions[:count]:
        run = client.get_workflow_handle(
            action.action.workflow_id, run_id=action.action.first_execution_run_id
        )
        try:
            result = await run.result()
            outcome = ("ok", result)
        except WorkflowFailureError as exc:
            cause = exc.cause
            outcome = (getattr(cause, "type", type(cause).__name__), str(cause))
        events = list((await run.fetch_history()).events)
        outcomes.append((*outcome, events))
    return outcomes


class TestGitLabPollerMentions:
    """Polling-only installs answer @mentions and replies in the agent's threads, under the Note
    Hook's workflow IDs: a note both paths see is answered once."""

    @pytest.fixture
    def settings_overrides(self) -> dict:
        return {"gitlab_poll": True, "gitlab_projects": ["group/app"], "gitlab_poll_interval": 3600}

    async def test_webhook_and_poller_answer_each_note_once(self, stack):
        stack.gitlab.store._ids["note"] = uuid.uuid4().int % 10**12 * 1000  # unique across the session
        stack.model.brain.brain.when(
            Reply.call("discussion-reply", body="It adds."), Reply.text("ok"), tool_offered="discussion-reply"
        )
        stack.gitlab.commit("group/app", "talk", {"README.md": "# Talk\n"}, "docs", author=DEVELOPER)
        mr = stack.gitlab.create_mr(
            "group/app", "talk", title="Draft: talk", author=DEVELOPER
        )  # not reviewed
        pid = project_id(stack)

        stack.gitlab.set_webhook(f"{stack.api_url}/webhook", WEBHOOK_SECRET)
        by_hook = stack.gitlab.add_note("group/app", mr.iid, DEVELOPER, "@copilot-agent what does add do?")
        assert stack.gitlab.wait_webhooks()
        await wait_workflow(stack.client, discussion_id(pid, by_hook.id), timeout=60)
        assert (await stack.client.get_workflow_handle(discussion_id(pid, by_hook.id)).result())[
            "status"
        ] == ("replied")

        stack.gitlab.set_webhook(None)  # from here on only the poller sees the notes
        mention = stack.gitlab.add_note("group/app", mr.iid, DEVELOPER, "@copilot-agent and sub?")
        reply = stack.gitlab.add_note(
            "group/app", mr.iid, DEVELOPER, "Why?", discussion_id=by_hook.discussion_id
        )
        stack.gitlab.add_note("group/app", mr.iid, DEVELOPER, "A note for the humans.")
        stack.gitlab.add_note("group/app", mr.iid, "reporter", "`@copilot-agent` in code is no mention.")
        queue = stack.settings.temporal_task_queue
        first = await stack.client.execute_workflow(
            "PollGitLab", id=f"poll-{uuid.uuid4().hex}", task_queue=queue
        )
        expected = {discussion_id(pid, mention.id), discussion_id(pid, reply.id)}
        assert set(first["answers_started"]) == expected
        assert first["answer_duplicates"] == 1  # the webhook's answer is not started again
        for workflow_id in expected:
            await wait_workflow(stack.client, workflow_id, timeout=60)
            assert (await stack.client.get_workflow_handle(workflow_id).result())["status"] == "replied"

        again = await stack.client.execute_workflow(
            "PollGitLab", id=f"poll-{uuid.uuid4().hex}", task_queue=queue
        )
        assert again["answers_started"] == [] and again["answer_duplicates"] == 3
        agent_replies = [
            n
            for d in stack.gitlab.discussions("group/app", mr.iid)
            for n in d["notes"]
            if n["author"]["username"] == AGENT
        ]
        assert len(agent_replies) == 3  # one answer per note for the agent, none for the others
