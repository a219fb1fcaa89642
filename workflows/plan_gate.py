"""The plan gate of ImplementIssue: propose a plan, then wait, durably and for days if need be, for
a person's decision; revise it when changes are asked for.

How the workflow learns of Jira comments: a decision check (`implement_plan_decision`, one short
activity) every `PLAN_POLL_INTERVAL` seconds, between durable timers; an operator's signal
(`approve_plan` / `request_plan_changes`) wakes the wait at once. Nothing busy-loops: each check
costs a timer and one activity in history, and after `PLAN_POLLS_PER_RUN` checks (or when Temporal
suggests it) the run continues as new with the wait's state (`PlanState`), so a week-long wait
keeps a bounded history. The Jira poller is not used for this: it only sees issues in the trigger
status, and a decision belongs to this run, which knows which plan comment it waits on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.plan_approval import PlanActivities
    from contracts.implement import (
        ImplementIssueInput,
        PlanDecision,
        PlanPolicy,
        PlanRunInput,
        PlanRunResult,
        PlanSignal,
        PlanState,
    )
    from contracts.temporal import PLAN_APPROVAL, agent_task_queue
    from workflows.retries import agent_retry, service_retry

JIRA_RETRY = service_retry("ConfigurationError", "NotMapped")
PLAN_RETRY = agent_retry(3, "ConfigurationError", "NotMapped", "AgentNoResult")
CALL = timedelta(minutes=2)
PLAN_RUN = timedelta(minutes=30)
PLAN_HEARTBEAT = timedelta(seconds=15)


class PlanOutcome:
    def __init__(self, status: str, plan: str = "", by: str = "", via: str = "", reason: str = "") -> None:
        self.status, self.plan, self.by, self.via, self.reason = status, plan, by, via, reason


class PlanGate:
    """Owned by the ImplementIssue run; the workflow's signal handlers call `signal`."""

    def __init__(self) -> None:
        self.signalled: PlanDecision | None = None
        self.rounds = 0
        self.polls = 0

    def signal(self, kind: str, arg: Any) -> None:
        try:
            data = PlanSignal.model_validate(arg if isinstance(arg, dict) else {"by": str(arg or "")})
        except ValueError as exc:
            workflow.logger.warning("plan signal %s ignored: %s", kind, str(exc).splitlines()[0])
            return
        self.signalled = PlanDecision(
            kind=kind, by=f"operator {data.by}", via="signal", feedback=data.feedback
        )  # type: ignore[arg-type]

    async def _call(self, method: Any, *args: Any) -> Any:
        return await workflow.execute_activity_method(
            method, args=list(args), start_to_close_timeout=CALL, retry_policy=JIRA_RETRY
        )

    async def run(self, owner: Any, data: ImplementIssueInput, project_id: int, step: Any) -> PlanOutcome:
        key = data.issue_key.upper()
        policy: PlanPolicy = await self._call(PlanActivities.plan_policy, key)
        if not policy.required:
            workflow.upsert_search_attributes([PLAN_APPROVAL.value_set("not-required")])
            return PlanOutcome("not_required", reason=policy.reason)
        state = data.resume
        if state is None:
            state = await self._propose(owner, key, project_id, 1, "", "", step)
        self.rounds = state.round
        while True:
            decision = await self._wait(owner, data, key, state, policy, step)
            if decision.kind == "approve":
                workflow.upsert_search_attributes([PLAN_APPROVAL.value_set("approved")])
                return PlanOutcome("approved", state.plan, decision.by, decision.via)
            if decision.kind == "expired":
                workflow.upsert_search_attributes([PLAN_APPROVAL.value_set("expired")])
                days = policy.expire_s / 86400
                reason = f"the plan was not approved within {days:g} day(s) ({policy.expire_s} s)"
                return PlanOutcome("expired", reason=reason)
            # changes requested
            if state.round >= policy.max_rounds:
                workflow.upsert_search_attributes([PLAN_APPROVAL.value_set("rejected")])
                reason = (
                    f"changes were requested on plan {state.round} of at most {policy.max_rounds} "
                    f"(PLAN_MAX_ROUNDS) by {decision.by}: {decision.feedback[:300]}"
                )
                return PlanOutcome("rejected", reason=reason)
            workflow.upsert_search_attributes([PLAN_APPROVAL.value_set("changes-requested")])
            state = await self._propose(
                owner,
                key,
                project_id,
                state.round + 1,
                state.plan,
                decision.feedback,
                step,
                state.tokens_used,
            )
            self.rounds = state.round

    async def _propose(
        self,
        owner: Any,
        key: str,
        project_id: int,
        round_: int,
        previous: str,
        feedback: str,
        step: Any,
        tokens: int = 0,
    ) -> PlanState:
        info = workflow.info()
        step(f"proposing plan {round_}", plan_round=round_, waiting_since="")
        # Each plan round is an agent run: it takes the project's slot and counts against its budget.
        async with owner.agent_slot(project_id) as lease:
            result: PlanRunResult = await workflow.execute_activity_method(
                PlanActivities.run_plan,
                PlanRunInput(
                    issue_key=key,
                    workflow_id=info.workflow_id,
                    run_id=info.run_id,
                    round=round_,
                    previous_plan=previous,
                    feedback=feedback,
                ),
                task_queue=agent_task_queue(info.task_queue),
                start_to_close_timeout=PLAN_RUN,
                heartbeat_timeout=PLAN_HEARTBEAT,
                retry_policy=PLAN_RETRY,
            )
            lease.tokens = result.tokens_used
        # The tag names the first run of this workflow ID's chain, so a continued run finds it.
        await self._call(PlanActivities.post_plan, key, _chain_id(), round_, result.plan, info.workflow_id)
        self.signalled = None  # a decision is about the plan it was given for
        return PlanState(
            round=round_, plan=result.plan, posted_at=workflow.now(), tokens_used=tokens + result.tokens_used
        )

    async def _wait(
        self, owner: Any, data: ImplementIssueInput, key: str, state: PlanState, policy: PlanPolicy, step: Any
    ) -> PlanDecision:
        since = state.posted_at.isoformat(timespec="seconds")
        workflow.upsert_search_attributes([PLAN_APPROVAL.value_set("waiting")])
        step(f"waiting for plan approval since {since}", plan_round=state.round, waiting_since=since)
        while True:
            if self.signalled is not None:
                decision, self.signalled = self.signalled, None
                return decision
            waited = (workflow.now() - state.posted_at).total_seconds()
            if waited >= policy.expire_s:
                return PlanDecision(kind="expired")
            if policy.reminder_s and not state.reminded and waited >= policy.reminder_s:
                await self._call(PlanActivities.plan_reminder, key, _chain_id(), state.round, since)
                state = state.model_copy(update={"reminded": True})
            wake = [policy.poll_s, policy.expire_s - waited]
            if policy.reminder_s and not state.reminded:
                wake.append(policy.reminder_s - waited)
            try:
                await workflow.wait_condition(
                    lambda: self.signalled is not None, timeout=timedelta(seconds=max(1.0, min(wake)))
                )
                continue  # a signal: decided without asking Jira
            except TimeoutError:
                pass
            decision: PlanDecision = await self._call(
                PlanActivities.plan_decision, key, _chain_id(), state.round
            )
            if decision.ignored:
                owner.note_ignored(decision.ignored)
            if decision.kind != "none":
                return decision
            self.polls += 1
            if self.polls >= policy.polls_per_run or workflow.info().is_continue_as_new_suggested():
                # A long wait: a fresh run with the same state keeps the history bounded.
                workflow.continue_as_new(data.model_copy(update={"resume": state}))


def _chain_id() -> str:
    """The run ID that started this workflow ID's chain of runs (stable across continue-as-new)."""
    info = workflow.info()
    return info.first_execution_run_id or info.run_id
