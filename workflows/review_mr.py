"""ReviewMR: one review of one head SHA of one merge request.

Started by the webhook (ID `review:<project>:<iid>:<sha>`), the GitLab poller (same ID) or by hand
(`temporal workflow start --type ReviewMR --input '{"project_id": 7, "mr_iid": 42}'`; the head SHA
is looked up). Older reviews of the same MR still running are cancelled: only the newest head is
worth posting, and post_review re-checks the head before it writes anything.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from activities.authority import PROJECT_NOT_SERVED
    from activities.review import ReviewActivities
    from contracts.models import (
        MRInfo,
        PostReviewInput,
        ReviewMRInput,
        ReviewMRResult,
        ReviewPrep,
        ReviewProgress,
        ReviewRunInput,
        ReviewRunResult,
    )
    from contracts.temporal import HEAD_SHA, agent_task_queue
    from workflows.agent_slots import AgentSlotHolder, SlotRefused
    from workflows.best_effort import best_effort
    from workflows.inputs import start_input

# GitLab hiccups (429/5xx, resets) are retried for up to ~10 minutes: with Retry-After honoured the
# attempts can come quickly, so the count is generous; 4xx are non-retryable and stop at once.
GITLAB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=25,
)
AGENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=3,
    non_retryable_error_types=["ConfigurationError"],
)
GITLAB_CALL = timedelta(minutes=2)
AGENT_RUN = timedelta(minutes=45)
AGENT_HEARTBEAT = timedelta(seconds=15)  # heartbeats every 5 s; a dead worker is noticed within 15 s
# post_review heartbeats on every GitLab response; one request may take up to its 20 s timeout.
POST_HEARTBEAT = timedelta(seconds=30)


@workflow.defn(name="ReviewMR")
class ReviewMR(AgentSlotHolder):
    def __init__(self) -> None:
        self._progress = ReviewProgress(step="starting")

    @workflow.query
    def progress(self) -> ReviewProgress:
        return self._progress

    @property
    def _progress(self) -> ReviewProgress:
        return self._current

    @_progress.setter
    def _progress(self, value: ReviewProgress) -> None:
        # Also the run's "current details" in the Web UI, so operators see the step without a query.
        self._current = value
        workflow.set_current_details(" · ".join(f"{k}: {v}" for k, v in value.model_dump().items() if v))

    def _step(self, step: str) -> None:
        self._progress = self._progress.model_copy(update={"step": step})

    @workflow.run
    async def run(self, *inputs: Any) -> ReviewMRResult:
        data = start_input(ReviewMRInput, inputs)  # a bad manual start fails the run here, with the reason
        self._step("reading merge request")
        try:
            mr: MRInfo = await workflow.execute_activity_method(
                ReviewActivities.fetch_mr,
                args=[data.project_id, data.mr_iid],
                start_to_close_timeout=GITLAB_CALL,
                retry_policy=GITLAB_RETRY,
            )
        except ActivityError as err:
            # A start by hand (or any input) for a project this deployment does not serve.
            if isinstance(err.cause, ApplicationError) and err.cause.type == PROJECT_NOT_SERVED:
                return self._done(ReviewMRResult(status="ignored", reason=err.cause.message))
            raise
        head = data.head_sha or mr.head_sha
        self._progress = ReviewProgress(step="checking", head_sha=head)
        if not data.head_sha:
            workflow.upsert_search_attributes([HEAD_SHA.value_set(head)])
        elif not mr.head_sha.startswith(head) and not head.startswith(mr.head_sha):
            return self._done(
                ReviewMRResult(
                    status="superseded", reason="the merge request has a newer head", head_sha=head
                )
            )
        skip = await workflow.execute_activity_method(
            ReviewActivities.review_skip_reason,
            mr,
            start_to_close_timeout=GITLAB_CALL,
            retry_policy=GITLAB_RETRY,
        )
        if skip:
            return self._done(ReviewMRResult(status="skipped", reason=skip, head_sha=head))

        current = await workflow.execute_activity_method(
            ReviewActivities.cancel_older_reviews,
            args=[data.project_id, data.mr_iid, mr.head_sha, workflow.info().workflow_id],
            start_to_close_timeout=GITLAB_CALL,
            retry_policy=GITLAB_RETRY,
        )
        if not current:
            return self._done(
                ReviewMRResult(
                    status="superseded", reason="the merge request has a newer head", head_sha=head
                )
            )
        await self._reaction(data, on=True)
        try:
            # A fork MR's author has a daily cap of reviews (FORK_REVIEWS_PER_AUTHOR_PER_DAY).
            fork_author = mr.author_username if mr.source_project_id != mr.project_id else ""
            result = await self._review(data, mr.head_sha, fork_author)
        except SlotRefused as refused:
            # The project's queue is full or its daily runs are spent: say so on the MR, once per run;
            # a fork author over their cap gets one note per MR, however often they push.
            if refused.key.startswith("fork-cap"):
                await workflow.execute_activity_method(
                    ReviewActivities.post_review_limit_notice,
                    args=[data.project_id, data.mr_iid, refused.reason, "fork-cap"],
                    start_to_close_timeout=GITLAB_CALL,
                    retry_policy=GITLAB_RETRY,
                )
            else:
                await workflow.execute_activity_method(
                    ReviewActivities.post_review_failure,
                    args=[data.project_id, data.mr_iid, workflow.info().workflow_id, refused.reason],
                    start_to_close_timeout=GITLAB_CALL,
                    retry_policy=GITLAB_RETRY,
                )
            await self._reaction(data, on=False)
            return self._done(ReviewMRResult(status="limited", reason=refused.reason, head_sha=head))
        except asyncio.CancelledError:
            # Superseded or cancelled by an operator: post nothing further, tidy the reaction.
            await asyncio.shield(asyncio.ensure_future(self._reaction(data, on=False)))
            raise
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                await asyncio.shield(asyncio.ensure_future(self._reaction(data, on=False)))
                raise
            self._step("failed")
            reason = _short_reason(err)
            await workflow.execute_activity_method(
                ReviewActivities.post_review_failure,
                args=[data.project_id, data.mr_iid, workflow.info().workflow_id, reason],
                start_to_close_timeout=GITLAB_CALL,
                retry_policy=GITLAB_RETRY,
            )
            await self._reaction(data, on=False)
            raise ApplicationError(f"review failed: {reason}", non_retryable=True) from err
        await self._reaction(data, on=False)
        return self._done(result)

    async def _review(self, data: ReviewMRInput, head: str, fork_author: str = "") -> ReviewMRResult:
        self._step("reading the merge request's discussions and commits")
        run_input = ReviewRunInput(
            project_id=data.project_id,
            mr_iid=data.mr_iid,
            head_sha=head,
            workflow_id=workflow.info().workflow_id,
        )
        prep: ReviewPrep = await workflow.execute_activity_method(
            ReviewActivities.prepare_review,
            run_input,
            start_to_close_timeout=GITLAB_CALL,
            retry_policy=GITLAB_RETRY,
        )
        if prep.superseded:
            return ReviewMRResult(status="superseded", reason="the merge request moved on", head_sha=head)
        self._step("waiting for an agent slot of the project")
        async with self.agent_slot(data.project_id, fork_author) as lease:
            self._step("running the reviewer")
            run: ReviewRunResult = await workflow.execute_activity_method(
                ReviewActivities.run_review,
                args=[run_input, prep],
                task_queue=agent_task_queue(workflow.info().task_queue),
                start_to_close_timeout=AGENT_RUN,
                heartbeat_timeout=AGENT_HEARTBEAT,
                retry_policy=AGENT_RETRY,
            )
            lease.tokens = run.tokens_used
        if run.superseded:
            return ReviewMRResult(status="superseded", reason="the merge request moved on", head_sha=head)
        if run.nothing_to_review:
            return ReviewMRResult(status="skipped", reason="this commit was reviewed already", head_sha=head)
        self._progress = self._progress.model_copy(update={"step": "posting", "findings": len(run.findings)})
        posted = await workflow.execute_activity_method(
            ReviewActivities.post_review,
            PostReviewInput(
                project_id=data.project_id,
                mr_iid=data.mr_iid,
                head_sha=head,
                workflow_id=workflow.info().workflow_id,
                run=run,
            ),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=POST_HEARTBEAT,
            retry_policy=GITLAB_RETRY,
        )
        if posted.superseded:
            return ReviewMRResult(status="superseded", reason="the merge request moved on", head_sha=head)
        self._progress = self._progress.model_copy(
            update={"inline": posted.inline, "fallback": posted.fallback}
        )
        return ReviewMRResult(status="posted", head_sha=head, posted=posted)

    async def _reaction(self, data: ReviewMRInput, *, on: bool) -> None:
        await best_effort(
            ReviewActivities.set_review_reaction,
            [data.project_id, data.mr_iid, on],
            f"{'set' if on else 'clear'} the review reaction",
        )

    def _done(self, result: ReviewMRResult) -> ReviewMRResult:
        self._step(result.status)
        return result


def _short_reason(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        kind = cause.type or "error"
        return {
            "AgentTimeout": "the agent ran out of time",
            "AgentFailed": "the agent run failed",
            "AgentNoResult": "the agent finished without a review",
            "ConfigurationError": "the service is misconfigured",
        }.get(kind, f"{kind}")
    return "an activity timed out" if cause is not None else "unknown error"
