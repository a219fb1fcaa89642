"""ImplementIssue: one Jira issue turned into a tested draft MR.

Started by the Jira poller (ID `implement:<KEY>`) or by hand
(`temporal workflow start --type ImplementIssue --input '{"issue_key": "PROJ-12"}'`).
In Progress → (plan gate: a proposed plan waits for a person's approval, `workflows/plan_gate.py`)
→ the agent implements it on `agent/<key>` and the service measures the tests → push → Draft MR →
Jira comment with the MR link → In Review. A run that produces no change or fails leaves the issue
in a known state with one comment (see `report_failure`), never silently "In Progress".

Signals (operators, `temporal workflow signal --workflow-id implement:<KEY> --name approve_plan
--input '{"by": "alice"}'`): `approve_plan`, `request_plan_changes` (`{"by": ..., "feedback": ...}`).
The current step is the `progress` query and the run's current details in the Web UI.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

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
    from workflows.plan_gate import PlanGate
    from workflows.retries import agent_retry, service_retry
    from workflows.review_loop import review_loop

# Jira/GitLab hiccups retried for up to ~10 minutes (workflows/retries.py).
SERVICE_RETRY = service_retry("ConfigurationError", "NotMapped", "JiraTransitionMissing")
# implement_change also reads GitLab and pushes before and after the agent; its steps are idempotent
# (it finds its own earlier push), so a few more attempts cost little. Permanent git failures arrive
# as non-retryable ApplicationErrors already; a transient GitError (network, 5xx from the git server)
# must stay retryable, so its type is not listed here.
AGENT_RETRY = agent_retry(5, "ConfigurationError", "NotMapped", "ChangeTooLarge")
SERVICE_CALL = timedelta(minutes=2)
MR_CALL = timedelta(minutes=2)
MR_HEARTBEAT = timedelta(seconds=20)
AGENT_RUN = timedelta(minutes=60)
AGENT_HEARTBEAT = timedelta(seconds=15)


@workflow.defn(name="ImplementIssue")
class ImplementIssue(AgentSlotHolder):
    def __init__(self) -> None:
        self._gate = PlanGate()
        self._progress = ImplementProgress(step="starting")

    @workflow.query
    def progress(self) -> ImplementProgress:
        return self._progress

    @property
    def _progress(self) -> ImplementProgress:
        return self._current

    @_progress.setter
    def _progress(self, value: ImplementProgress) -> None:
        # Also the run's "current details" in the Web UI: "waiting for plan approval since ..." etc.
        self._current = value
        workflow.set_current_details(" · ".join(f"{k}: {v}" for k, v in value.model_dump().items() if v))

    @workflow.signal(name="approve_plan")
    def approve_plan(self, arg: Any = None) -> None:
        self._gate.signal("approve", arg)

    @workflow.signal(name="request_plan_changes")
    def request_plan_changes(self, arg: Any = None) -> None:
        self._gate.signal("changes", arg)

    def note_ignored(self, ignored: list[str]) -> None:
        self._progress = self._progress.model_copy(update={"ignored": ignored[-5:]})

    def _step(self, step: str, **update: Any) -> None:
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
        if data.trigger == Trigger.POLLER and data.resume is None:
            trigger = await self._call(ImplementActivities.trigger_status, key)
            if issue.status.casefold() != trigger.casefold():
                # Found by a poll but moved on since (or a finished run's stale search hit).
                self._step("skipped")
                return ImplementIssueResult(
                    status="skipped", issue_key=key, reason=f"issue is '{issue.status}', not '{trigger}'"
                )
        try:
            return await self._implement(key, issue, data)
        except ActivityError as err:
            reason = _reason(err)
            await self._fail(key, reason)
            raise ApplicationError(f"implementation failed: {reason}", non_retryable=True) from err

    async def _implement(self, key: str, issue: IssueInfo, data: ImplementIssueInput) -> ImplementIssueResult:
        info = workflow.info()
        self._step("moving to In Progress")
        await self._call(ImplementActivities.transition, key, "in_progress")

        gate = await self._gate.run(self, data, issue.gitlab_project_id, self._step)
        plan_figures = {
            "plan_rounds": self._gate.rounds,
            "plan_approved_by": gate.by,
            "plan_approved_via": gate.via,
        }
        if gate.status in ("expired", "rejected"):
            await self._fail(key, gate.reason)
            status = "plan_expired" if gate.status == "expired" else "plan_rejected"
            return ImplementIssueResult(
                status=status, issue_key=key, reason=gate.reason[:500], **plan_figures
            )

        self._step("waiting for an agent slot of the project")
        async with self.agent_slot(issue.gitlab_project_id) as lease:
            self._step("implementing")
            run: ImplementRunResult = await workflow.execute_activity_method(
                ImplementActivities.implement_change,
                ImplementRunInput(
                    issue_key=key, workflow_id=info.workflow_id, run_id=info.run_id, plan=gate.plan
                ),
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
            return ImplementIssueResult(
                status="no_change", issue_key=key, reason=reason[:500], **plan_figures
            )

        self._step("opening the merge request", branch=run.branch)
        mr: OpenMRResult = await workflow.execute_activity_method(
            ImplementActivities.open_mr,
            OpenMRInput(
                issue_key=key,
                issue_summary=issue.summary,
                workflow_id=info.workflow_id,
                run=run,
                plan_note=(
                    f"Plan approved by {gate.by} ({gate.via}) after {self._gate.rounds} round(s), before any code."
                    if gate.status == "approved"
                    else ""
                ),
            ),
            start_to_close_timeout=MR_CALL,
            heartbeat_timeout=MR_HEARTBEAT,
            retry_policy=SERVICE_RETRY,
        )
        self._step("commenting on Jira", mr_url=mr.web_url)
        tests_line = run.tests_note if run.tests is None and run.tests_note else evidence_line(run.tests)
        await self._call(ImplementActivities.comment_mr, key, mr.web_url, info.run_id, tests_line)
        self._step("moving to In Review")
        await self._call(ImplementActivities.transition, key, "in_review")
        result = ImplementIssueResult(
            status="in_review", issue_key=key, branch=run.branch, mr_url=mr.web_url, **plan_figures
        )
        try:
            figures = await review_loop(
                self, key, run.project_id, mr.iid, run.commit_sha, run.tests, self._step
            )
            result.review_rounds, result.reviews = figures.rounds, figures.reviews
            if figures.result is not None:
                result.ready, result.draft_reason = figures.result.ready, figures.result.reason[:500]
        except (ActivityError, ChildWorkflowError) as err:
            # The MR exists and the issue is In Review: a failing loop leaves a draft, never a failure.
            why = _reason(err) if isinstance(err, ActivityError) else str(err)
            result.draft_reason = f"the review loop failed: {why}"[:500]
        self._step("in review", review_round=result.review_rounds)
        return result

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
