"""ImplementIssue: one Jira issue turned into a tested draft MR.

Started by the Jira poller (ID `implement:<KEY>`) or by hand
(`temporal workflow start --type ImplementIssue --input '{"issue_key": "PROJ-12"}'`).
In Progress → the agent implements it on `agent/<key>` and the service measures the tests → push →
Draft MR → Jira comment with the MR link → In Review. A run that produces no change or fails leaves
the issue in a known state with one comment (see `report_failure`), never silently "In Progress".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.implement import ImplementActivities
    from contracts.implement import (
        ImplementIssueInput,
        ImplementIssueResult,
        ImplementProgress,
        ImplementRunInput,
        ImplementRunResult,
        IssueInfo,
        OpenMRInput,
        OpenMRResult,
    )
    from contracts.models import Trigger
    from contracts.temporal import agent_task_queue
    from core.mr_description import evidence_line
    from workflows.agent_slots import AgentSlotHolder
    from workflows.inputs import start_input

# Jira/GitLab hiccups retried for up to ~10 minutes (see GITLAB_RETRY in review_mr.py).
SERVICE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=25,
    non_retryable_error_types=["ConfigurationError", "NotMapped", "JiraTransitionMissing"],
)
AGENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    # implement_change also reads GitLab and pushes before and after the agent; its steps are
    # idempotent (it finds its own earlier push), so a few more attempts cost little.
    maximum_attempts=5,
    # Permanent git failures arrive as non-retryable ApplicationErrors already; a transient GitError
    # (network, 5xx from the git server) must stay retryable, so its type is not listed here.
    non_retryable_error_types=["ConfigurationError", "NotMapped", "ChangeTooLarge"],
)
SERVICE_CALL = timedelta(minutes=2)
MR_CALL = timedelta(minutes=2)
MR_HEARTBEAT = timedelta(seconds=20)
AGENT_RUN = timedelta(minutes=60)
AGENT_HEARTBEAT = timedelta(seconds=15)


@workflow.defn(name="ImplementIssue")
class ImplementIssue(AgentSlotHolder):
    def __init__(self) -> None:
        self._progress = ImplementProgress(step="starting")

    @workflow.query
    def progress(self) -> ImplementProgress:
        return self._progress

    def _step(self, step: str, **update: str) -> None:
        self._progress = self._progress.model_copy(update={"step": step, **update})

    async def _call(self, method, *args):  # type: ignore[no-untyped-def]
        return await workflow.execute_activity_method(
            method, args=list(args), start_to_close_timeout=SERVICE_CALL, retry_policy=SERVICE_RETRY
        )

    @workflow.run
    async def run(self, *inputs: Any) -> ImplementIssueResult:
        data = start_input(ImplementIssueInput, inputs)  # a bad manual start fails the run here
        key = data.issue_key.upper()
        self._step("reading the issue")
        try:
            issue: IssueInfo = await self._call(ImplementActivities.issue_info, key)
        except ActivityError as err:
            if _kind(err) == "NotMapped":
                # Not ours to touch: no comment, no transition on an issue of an unmapped project.
                self._step("not mapped")
                return ImplementIssueResult(status="not_mapped", issue_key=key, reason=_reason(err))
            raise
        if data.trigger == Trigger.POLLER:
            trigger = await self._call(ImplementActivities.trigger_status, key)
            if issue.status.casefold() != trigger.casefold():
                # Found by a poll but moved on since (or a finished run's stale search hit).
                self._step("skipped")
                return ImplementIssueResult(
                    status="skipped", issue_key=key, reason=f"issue is '{issue.status}', not '{trigger}'"
                )
        try:
            return await self._implement(key, issue)
        except ActivityError as err:
            reason = _reason(err)
            await self._fail(key, reason)
            raise ApplicationError(f"implementation failed: {reason}", non_retryable=True) from err

    async def _implement(self, key: str, issue: IssueInfo) -> ImplementIssueResult:
        info = workflow.info()
        self._step("moving to In Progress")
        await self._call(ImplementActivities.transition, key, "in_progress")

        self._step("waiting for an agent slot of the project")
        async with self.agent_slot(issue.gitlab_project_id) as lease:
            self._step("implementing")
            run: ImplementRunResult = await workflow.execute_activity_method(
                ImplementActivities.implement_change,
                ImplementRunInput(issue_key=key, workflow_id=info.workflow_id, run_id=info.run_id),
                task_queue=agent_task_queue(info.task_queue),
                start_to_close_timeout=AGENT_RUN,
                heartbeat_timeout=AGENT_HEARTBEAT,
                retry_policy=AGENT_RETRY,
            )
            lease.tokens = run.tokens_used
        if run.status == "no_change":
            reason = "the agent produced no change"
            if run.agent_summary:
                reason += f". Its explanation: {run.agent_summary[:1500]}"
            await self._fail(key, reason)
            return ImplementIssueResult(status="no_change", issue_key=key, reason=reason[:500])

        self._step("opening the merge request", branch=run.branch)
        mr: OpenMRResult = await workflow.execute_activity_method(
            ImplementActivities.open_mr,
            OpenMRInput(issue_key=key, issue_summary=issue.summary, workflow_id=info.workflow_id, run=run),
            start_to_close_timeout=MR_CALL,
            heartbeat_timeout=MR_HEARTBEAT,
            retry_policy=SERVICE_RETRY,
        )
        self._step("commenting on Jira", mr_url=mr.web_url)
        tests_line = run.tests_note if run.tests is None and run.tests_note else evidence_line(run.tests)
        await self._call(ImplementActivities.comment_mr, key, mr.web_url, info.run_id, tests_line)
        self._step("moving to In Review")
        await self._call(ImplementActivities.transition, key, "in_review")
        self._step("in review")
        return ImplementIssueResult(status="in_review", issue_key=key, branch=run.branch, mr_url=mr.web_url)

    async def _fail(self, key: str, reason: str) -> None:
        self._step("reporting the failure")
        info = workflow.info()
        await self._call(ImplementActivities.report_failure, key, info.workflow_id, info.run_id, reason)
        self._step("failed")


def _kind(err: ActivityError) -> str:
    cause = err.cause
    return (cause.type or "") if isinstance(cause, ApplicationError) else ""


def _reason(err: ActivityError) -> str:
    """A short, secret-free reason for the Jira comment: the error's kind and its first line."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        known = {
            "AgentTimeout": "the agent ran out of time",
            "AgentFailed": "the agent run failed",
            "AgentNoResult": "the agent finished without reporting an implementation",
            "ConfigurationError": "the service is misconfigured",
            "TransientHTTPError": "GitLab or Jira kept failing (retries exhausted)",
        }
        if cause.type in known:
            return known[cause.type or ""]
        return f"{cause.type or 'error'}: {str(cause.message).splitlines()[0][:300]}"
    return "an activity timed out" if cause is not None else "unknown error"
