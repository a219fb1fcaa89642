"""ReviewMR: one review of one head SHA of one merge request.

Started by the webhook (ID `review:<project>:<iid>:<sha>`), the GitLab poller (same ID) or by hand
(`temporal workflow start --type ReviewMR --input '{"project_id": 7, "mr_iid": 42}'`; the head SHA
is looked up). Older reviews of the same MR still running are cancelled: only the newest head is
worth posting, and post_review re-checks the head before it writes anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.authority import PROJECT_NOT_SERVED
    from activities.review import ReviewActivities
    from activities.review_ledger import LedgerActivities
    from contracts.coverage import ReviewBundleInput
    from contracts.delivery import Coverage, StatusUpdate
    from contracts.ledger import Ledger
    from contracts.models import (
        MRInfo,
        PostReviewInput,
        PostReviewResult,
        ReviewMRInput,
        ReviewMRResult,
        ReviewPrep,
        ReviewProgress,
        ReviewRunInput,
        ReviewRunResult,
        ReviewStatusInput,
        Trigger,
    )
    from contracts.temporal import GITLAB_PROJECT, HEAD_SHA, agent_task_queue, review_search_attributes
    from core.review_bundles import bundle_task, failed_coverage, merge_runs
    from workflows.agent_slots import AgentSlotHolder, EarlySlot, SlotRefused
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
FAST_START = "review-fast-start-v1"
COMMIT_STATUS = "copilot-review-commit-status"  # workflow.patched: runs that set the commit status
PREP_TOGETHER = "review-prep-together-v1"  # workflow.patched: preparation, learnings and slot at once
OWN_ATTRIBUTES = "review-own-search-attributes-v1"  # workflow.patched: a manual start sets them itself
ENDING_KEPT = "review-ending-kept-v1"  # workflow.patched: a cancel arriving while the run ends waits
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
        self._fast = False
        self._eyes: asyncio.Future[None] | None = None  # the 👀 reaction, set in the background
        self._older: asyncio.Future[bool] | None = None  # older reviews being cancelled meanwhile
        self._running_status: asyncio.Task[None] | None = None
        self._statuses = False  # the copilot-review commit status (patched in: COMMIT_STATUS)
        self._ledger: Ledger | None = None

    @workflow.query
    def progress(self) -> ReviewProgress:
        return self._progress

    @workflow.query
    def ledger(self) -> Ledger | None:
        """The MR's finding ledger as this review left it (None until it has posted)."""
        return self._ledger

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
        # Fewer, cheaper steps before the agent (bench/bench_review_overhead.py): the two short reads
        # as local activities, the 👀 reaction off the critical path, and superseding older reviews
        # while the review is prepared. Runs started before this change replay the old sequence.
        self._fast = workflow.patched(FAST_START)
        try:
            mr: MRInfo = await self._read(ReviewActivities.fetch_mr, data.project_id, data.mr_iid)
        except (ActivityError, ApplicationError) as err:
            # A start by hand (or any input) for a project this deployment does not serve. A local
            # activity's failure reaches the workflow as the ApplicationError itself, not wrapped.
            cause = err.cause if isinstance(err, ActivityError) else err
            if isinstance(cause, ApplicationError) and cause.type == PROJECT_NOT_SERVED:
                return self._done(ReviewMRResult(status="ignored", reason=cause.message))
            raise
        head = data.head_sha or mr.head_sha
        self._progress = ReviewProgress(step="checking", head_sha=head)
        unlisted = GITLAB_PROJECT not in workflow.info().typed_search_attributes
        if unlisted and workflow.patched(OWN_ATTRIBUTES):
            # Started by hand without the webhook's attributes: a newer head's review finds running
            # reviews of the MR by them, so without them this one could never be superseded.
            own = review_search_attributes(data.project_id, data.mr_iid, None, data.trigger.value)
            workflow.upsert_search_attributes([pair.key.value_set(pair.value) for pair in own])
        if not data.head_sha:
            workflow.upsert_search_attributes([HEAD_SHA.value_set(head)])
        elif not mr.head_sha.startswith(head) and not head.startswith(mr.head_sha):
            return self._done(
                ReviewMRResult(
                    status="superseded", reason="the merge request has a newer head", head_sha=head
                )
            )
        skip = await self._read(ReviewActivities.review_skip_reason, mr)
        if skip and data.trigger == Trigger.IMPLEMENT and mr.state == "opened":
            # ImplementIssue reviews its own draft MR (a child run): the draft and agent-author skips
            # keep webhooks and pollers off agent MRs, not this closed reviewer ↔ implementer loop.
            skip = ""
        if skip:
            return self._done(ReviewMRResult(status="skipped", reason=skip, head_sha=head))

        cancel_older = workflow.execute_activity_method(
            ReviewActivities.cancel_older_reviews,
            args=[data.project_id, data.mr_iid, mr.head_sha, workflow.info().workflow_id],
            start_to_close_timeout=GITLAB_CALL,
            retry_policy=GITLAB_RETRY,
        )
        if self._fast:
            self._older = asyncio.ensure_future(cancel_older)
            self._eyes = asyncio.ensure_future(self._reaction(data, on=True))
        else:
            current = await cancel_older
            if not current:
                return self._done(
                    ReviewMRResult(
                        status="superseded", reason="the merge request has a newer head", head_sha=head
                    )
                )
            await self._reaction(data, on=True)
        # The commit status says "running" while the review runs, set off the critical path (every
        # later status update waits for it, so they arrive in order). Runs started before commit
        # statuses existed replay without them.
        self._statuses = workflow.patched(COMMIT_STATUS)
        self._running_status = asyncio.ensure_future(
            self._status(
                data, mr.head_sha, StatusUpdate(state="running", description="Copilot review running")
            )
        )
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
            await self._end_status(data, mr.head_sha, "failed", f"not reviewed: {refused.reason}")
            return self._done(ReviewMRResult(status="limited", reason=refused.reason, head_sha=head))
        except asyncio.CancelledError:
            # Superseded or cancelled by an operator: post nothing further, tidy the reaction.
            await asyncio.shield(asyncio.ensure_future(self._cancelled(data, mr.head_sha)))
            raise
        except (ActivityError, ChildWorkflowError) as err:
            if isinstance(err.cause, CancelledError):
                await asyncio.shield(asyncio.ensure_future(self._cancelled(data, mr.head_sha)))
                raise
            self._step("failed")
            reason = _short_reason(err)
            await workflow.execute_activity_method(
                ReviewActivities.post_review_failure,
                args=[data.project_id, data.mr_iid, workflow.info().workflow_id, reason],
                start_to_close_timeout=GITLAB_CALL,
                retry_policy=GITLAB_RETRY,
            )
            await self._ending(self._say_failed(data, mr.head_sha, reason))
            raise ApplicationError(f"review failed: {reason}", non_retryable=True) from err
        await self._ending(self._say_outcome(data, mr.head_sha, result))
        return self._done(result)

    async def _ending(self, ending: Coroutine[Any, Any, None]) -> None:
        """Run the run's last words (reaction off, commit status) to the end, whatever arrives.

        A newer push cancels this run; when its cancel lands while the run is already ending, the
        ending must not be cut short: a cancelled wait for the "running" status would let "canceled"
        find nothing to end and "running" land after it, left for ever on a stale head. The outcome
        is decided by then, so the run completes with it and the late cancel changes nothing.
        """
        if not workflow.patched(ENDING_KEPT):
            await ending  # runs started before: replay their unshielded ending
            return
        task = asyncio.ensure_future(ending)
        while True:
            try:
                await asyncio.shield(task)
                return
            except asyncio.CancelledError:
                if task.done():
                    raise

    async def _say_failed(self, data: ReviewMRInput, head: str, reason: str) -> None:
        await self._reaction(data, on=False)
        await self._end_status(data, head, "failed", f"review failed: {reason}")

    async def _say_outcome(self, data: ReviewMRInput, head: str, result: ReviewMRResult) -> None:
        await self._reaction(data, on=False)
        await self._end_status_of(data, head, result)

    async def _review(self, data: ReviewMRInput, head: str, fork_author: str = "") -> ReviewMRResult:
        self._step("reading the merge request's discussions and commits")
        run_input = ReviewRunInput(
            project_id=data.project_id,
            mr_iid=data.mr_iid,
            head_sha=head,
            workflow_id=workflow.info().workflow_id,
        )
        if workflow.patched(PREP_TOGETHER):
            return await self._review_prepared_together(data, head, fork_author, run_input)
        prep: ReviewPrep = await workflow.execute_activity_method(
            ReviewActivities.prepare_review,
            run_input,
            start_to_close_timeout=GITLAB_CALL,
            retry_policy=GITLAB_RETRY,
        )
        if self._older is not None and not await self._older:
            return ReviewMRResult(
                status="superseded", reason="the merge request has a newer head", head_sha=head
            )
        if prep.superseded:
            return ReviewMRResult(status="superseded", reason="the merge request moved on", head_sha=head)
        prep = await self._with_learnings(data, prep)
        if prep.bundles:
            run, failures = await self._review_in_bundles(data, head, fork_author, prep)
            return await self._publish(data, head, run, failures)
        self._step("waiting for an agent slot of the project")
        async with self.agent_slot(data.project_id, fork_author) as lease:
            self._step("running the reviewer")
            run = await run_reviewer(run_input, prep)
            lease.tokens = run.tokens_used
        if run.superseded:
            return ReviewMRResult(status="superseded", reason="the merge request moved on", head_sha=head)
        if run.nothing_to_review:
            return ReviewMRResult(status="skipped", reason="this commit was reviewed already", head_sha=head)
        return await self._publish(data, head, run)

    async def _review_prepared_together(
        self, data: ReviewMRInput, head: str, fork_author: str, run_input: ReviewRunInput
    ) -> ReviewMRResult:
        """The review's preparation, the project's learned notes and the agent slot are asked for at
        once (none needs another), so the agent starts after the slowest of them, not after their
        sum (bench/bench_review_overhead.py). A review that fans out into bundles or turns out
        superseded gives the slot back unused: its bundles take slots of their own. A fork MR asks
        once it knows it runs here: its author's daily cap counts requests (a bundled review's
        first bundle asks for it)."""
        slot = None if fork_author else self.early_agent_slot(data.project_id)
        try:
            reads = [
                workflow.execute_activity_method(
                    ReviewActivities.prepare_review,
                    run_input,
                    start_to_close_timeout=GITLAB_CALL,
                    retry_policy=GITLAB_RETRY,
                )
            ]
            if workflow.patched("ledger-learnings-v1"):
                reads.append(
                    workflow.execute_activity_method(
                        LedgerActivities.project_learnings,
                        data.project_id,
                        start_to_close_timeout=GITLAB_CALL,
                        retry_policy=GITLAB_RETRY,
                    )
                )
            prep, *learned = await asyncio.gather(*reads)
            if self._older is not None and not await self._older:
                await _give_back(slot)
                return ReviewMRResult(
                    status="superseded", reason="the merge request has a newer head", head_sha=head
                )
            if prep.superseded:
                await _give_back(slot)
                return ReviewMRResult(status="superseded", reason="the merge request moved on", head_sha=head)
            if learned and prep.task is not None:
                task = prep.task.model_copy(update={"learnings": learned[0][-100:]})
                prep = prep.model_copy(update={"task": task})
            if prep.bundles:
                await _give_back(slot)
                run, failures = await self._review_in_bundles(data, head, fork_author, prep)
                return await self._publish(data, head, run, failures)
            self._step("waiting for an agent slot of the project")
            slot = slot or self.early_agent_slot(data.project_id, fork_author)
            await slot.granted()
            self._step("running the reviewer")
            slot.used = True
            run = await run_reviewer(run_input, prep)
            slot.tokens = run.tokens_used
        except (Exception, asyncio.CancelledError) as exc:
            ending = isinstance(exc, asyncio.CancelledError)
            await asyncio.shield(asyncio.ensure_future(_give_back(slot, ending=ending)))
            raise
        await slot.release()
        if run.superseded:
            return ReviewMRResult(status="superseded", reason="the merge request moved on", head_sha=head)
        if run.nothing_to_review:
            return ReviewMRResult(status="skipped", reason="this commit was reviewed already", head_sha=head)
        return await self._publish(data, head, run)

    async def _review_in_bundles(
        self, data: ReviewMRInput, head: str, fork_author: str, prep: ReviewPrep
    ) -> tuple[ReviewRunResult, list[str]]:
        """Fan out over the planned bundles, each a ReviewBundle child with its own agent slot and
        retries, and merge what they found; a bundle that fails leaves its files listed as not
        reviewed with the reason, and the others are still delivered."""
        assert prep.task is not None
        count = len(prep.bundles)
        parent = workflow.info().workflow_id
        done = 0
        self._step(f"reviewing in {count} bundles")

        async def one(index: int) -> ReviewRunResult | ChildWorkflowError:
            nonlocal done
            bundle = prep.bundles[index]
            task, open_ids = bundle_task(prep.task, bundle, index, count, prep.open_thread_ids)  # type: ignore[arg-type]
            child = ReviewBundleInput(
                project_id=data.project_id,
                mr_iid=data.mr_iid,
                head_sha=head,
                parent_id=parent,
                index=index,
                count=count,
                task=task,
                open_thread_ids=open_ids,
                last_reviewed_sha=prep.last_reviewed_sha,
                # A fork author's daily cap counts reviews, not bundles: the first bundle asks for it.
                fork_author=fork_author if index == 0 else "",
            )
            try:
                result: ReviewRunResult = await workflow.execute_child_workflow(
                    "ReviewBundle",
                    child,
                    id=f"{parent}:bundle-{index + 1}-of-{count}",
                    result_type=ReviewRunResult,
                    execution_timeout=timedelta(hours=6),
                )
                return result
            except ChildWorkflowError as err:
                if isinstance(err.cause, CancelledError):
                    raise
                return err
            finally:
                done += 1
                self._step(f"reviewing in {count} bundles: {done} done")

        outcomes = await asyncio.gather(*(one(i) for i in range(count)))
        runs: list[ReviewRunResult | None] = []
        coverage: list[Coverage] = [Coverage.of(prep.not_reviewed)]
        notes = list(prep.plan_notes)
        failures: list[str] = []
        for index, outcome in enumerate(outcomes):
            files = prep.bundles[index].files
            if isinstance(outcome, ReviewRunResult):
                runs.append(outcome)
                coverage.append(outcome.coverage or failed_coverage(files, "the bundle reported no coverage"))
                continue
            reason = _child_reason(outcome)
            runs.append(None)
            failures.append(f"bundle {index + 1} of {count} ({len(files)} files): {reason}")
            coverage.append(
                failed_coverage(files, f"bundle {index + 1} of {count} was not reviewed: {reason}")
            )
        if all(r is None for r in runs):
            first = outcomes[0]
            assert isinstance(first, ChildWorkflowError)
            cause = first.cause
            if isinstance(cause, ApplicationError) and cause.type == "AgentSlotRefused":
                raise SlotRefused(cause.message, str(cause.details[0]) if cause.details else "bundle")
            raise first  # every bundle failed: the review failed, said once in a failure note
        notes += [f"{f[0].upper()}{f[1:]}; its files were not reviewed" for f in failures]
        return merge_runs(runs, Coverage.merge(coverage), notes), failures

    async def _publish(
        self, data: ReviewMRInput, head: str, run: ReviewRunResult, failures: list[str] | None = None
    ) -> ReviewMRResult:
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
        await self._record_ledger(data, posted)
        self._progress = self._progress.model_copy(
            update={"inline": posted.inline, "fallback": posted.fallback}
        )
        if failures:
            # What the other bundles found is delivered; the review as a whole did not succeed.
            reason = "; ".join(failures)[:1000]
            return ReviewMRResult(status="failed", reason=reason, head_sha=head, posted=posted)
        return ReviewMRResult(status="posted", head_sha=head, posted=posted)

    async def _read(self, method: Any, *args: Any) -> Any:
        """A short GitLab read: a local activity on the fast path (no task queue round trip)."""
        if self._fast:
            return await workflow.execute_local_activity_method(
                method, args=list(args), start_to_close_timeout=GITLAB_CALL, retry_policy=GITLAB_RETRY
            )
        return await workflow.execute_activity_method(
            method, args=list(args), start_to_close_timeout=GITLAB_CALL, retry_policy=GITLAB_RETRY
        )

    # --- the finding ledger (activities/review_ledger.py) -----------------------------------------
    async def _with_learnings(self, data: ReviewMRInput, prep: ReviewPrep) -> ReviewPrep:
        """The project's learned notes, shown to the reviewer as data."""
        if prep.task is None or not workflow.patched("ledger-learnings-v1"):
            return prep
        notes = await workflow.execute_activity_method(
            LedgerActivities.project_learnings,
            data.project_id,
            start_to_close_timeout=GITLAB_CALL,
            retry_policy=GITLAB_RETRY,
        )
        return prep.model_copy(update={"task": prep.task.model_copy(update={"learnings": notes[-100:]})})

    async def _record_ledger(self, data: ReviewMRInput, posted: PostReviewResult) -> None:
        self._ledger = posted.ledger
        if posted.learned and workflow.patched("ledger-learnings-v1"):
            await workflow.execute_activity_method(
                LedgerActivities.record_learnings,
                args=[data.project_id, posted.learned],
                start_to_close_timeout=GITLAB_CALL,
                retry_policy=GITLAB_RETRY,
            )

    async def _reaction(self, data: ReviewMRInput, *, on: bool) -> None:
        if not on and self._eyes is not None:
            await self._eyes  # set before it is cleared, whatever came first
        await best_effort(
            ReviewActivities.set_review_reaction,
            [data.project_id, data.mr_iid, on],
            f"{'set' if on else 'clear'} the review reaction",
        )

    # --- the copilot-review commit status (kept apart: the outcome -> GitLab's status) ---------------
    async def _status(self, data: ReviewMRInput, head: str, update: StatusUpdate, **options: bool) -> None:
        if not self._statuses:
            return
        if self._running_status is not None and update.state != "running":
            # The outcome must land after "running"; a running update cut short by a cancellation
            # is no reason to leave the outcome unsaid.
            with contextlib.suppress(asyncio.CancelledError):
                await workflow.wait([self._running_status])
        await best_effort(
            ReviewActivities.set_review_status,
            [
                ReviewStatusInput(
                    project_id=data.project_id, mr_iid=data.mr_iid, head_sha=head, update=update, **options
                )
            ],
            f"set the commit status {update.state}",
        )

    async def _end_status(self, data: ReviewMRInput, head: str, state: str, description: str) -> None:
        await self._status(data, head, StatusUpdate(state=state, description=description[:255]))  # type: ignore[arg-type]

    async def _end_status_of(self, data: ReviewMRInput, head: str, result: ReviewMRResult) -> None:
        if result.posted is not None and result.posted.status is not None:
            await self._status(data, head, result.posted.status)
        elif result.status == "superseded":
            update = StatusUpdate(state="canceled", description="superseded by a newer push")
            await self._status(data, head, update, only_if_running=True)
        elif result.status == "skipped":
            update = StatusUpdate(state="success", description="reviewed already")
            await self._status(data, head, update, repeat_previous=True)

    async def _cancelled(self, data: ReviewMRInput, head: str) -> None:
        await self._reaction(data, on=False)
        update = StatusUpdate(state="canceled", description="review canceled (superseded or by an operator)")
        await self._status(data, head, update, only_if_running=True)

    def _done(self, result: ReviewMRResult) -> ReviewMRResult:
        self._step(result.status)
        return result


def run_reviewer(run_input: ReviewRunInput, prep: ReviewPrep) -> Coroutine[Any, Any, ReviewRunResult]:
    """The agent's review run (one whole review, or one bundle of it) on the agent task queue, with
    its timeouts and retries: the one call of `run_review` for ReviewMR and ReviewBundle."""
    return workflow.execute_activity_method(
        ReviewActivities.run_review,
        args=[run_input, prep],
        task_queue=agent_task_queue(workflow.info().task_queue),
        start_to_close_timeout=AGENT_RUN,
        heartbeat_timeout=AGENT_HEARTBEAT,
        retry_policy=AGENT_RETRY,
    )


async def _give_back(slot: EarlySlot | None, *, ending: bool = False) -> None:
    if slot is not None:
        await slot.release(ending=ending)


def _child_reason(err: ChildWorkflowError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message[:300] or (cause.type or "error")
    return "the bundle's workflow timed out" if cause is not None else "unknown error"


def _short_reason(err: ActivityError | ChildWorkflowError) -> str:
    if isinstance(err, ChildWorkflowError):
        return _child_reason(err)
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
