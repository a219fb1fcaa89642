"""MRDiscussion: answer one MR note that mentions the agent or replies in one of its threads.

ID `discussion:<project>:<note>` (REJECT_DUPLICATE), so a redelivered Note Hook does nothing. Started
by the webhook for every human, non-system note in a thread or mentioning the agent; the first
activity decides with GitLab's data whether the note is the agent's to answer (a reply in a thread
the agent posted in needs the discussion, which the webhook payload does not carry) and the run ends
"ignored" within a second when it is not. By hand:
`temporal workflow start --type MRDiscussion --input '{"project_id": 7, "mr_iid": 3, "note_id": 55}'`.

👀 on the note while working → agent run (answer; a requested change is committed and pushed inside
that activity) → one reply in the thread (marker `reply note=<id>`) → resolution of the agent's own
finding per RESOLUTION_BEHAVIOR. A failed run still gets one reply saying so.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.discussion import DiscussionActivities
    from contracts.discussion import (
        Admission,
        AdmitDiscussionInput,
        DiscussionContext,
        DiscussionProgress,
        DiscussionRunInput,
        DiscussionRunResult,
        LimitNoticeInput,
        MRDiscussionInput,
        MRDiscussionResult,
        PostDiscussionReplyInput,
        PostDiscussionReplyResult,
    )
    from contracts.temporal import GITLAB_PROJECT, GITLAB_USER, MERGE_REQUEST_IID, agent_task_queue
    from workflows.agent_slots import AgentSlotHolder, SlotRefused
    from workflows.best_effort import best_effort
    from workflows.inputs import start_input
    from workflows.review_mr import (
        AGENT_HEARTBEAT,
        AGENT_RETRY,
        AGENT_RUN,
        GITLAB_CALL,
        GITLAB_RETRY,
        _short_reason,
    )


@workflow.defn(name="MRDiscussion")
class MRDiscussion(AgentSlotHolder):
    def __init__(self) -> None:
        self._progress = DiscussionProgress(step="starting")

    @workflow.query
    def progress(self) -> DiscussionProgress:
        return self._progress

    def _step(self, step: str) -> None:
        self._progress = self._progress.model_copy(update={"step": step})

    @workflow.run
    async def run(self, *inputs: Any) -> MRDiscussionResult:
        data = start_input(MRDiscussionInput, inputs)  # a bad manual start fails the run here
        self._progress = DiscussionProgress(step="reading the thread", note_id=data.note_id)
        ctx: DiscussionContext = await workflow.execute_activity_method(
            DiscussionActivities.discussion_context,
            data,
            start_to_close_timeout=GITLAB_CALL,
            retry_policy=GITLAB_RETRY,
        )
        if ctx.ignore_reason:
            return self._done(MRDiscussionResult(status="ignored", reason=ctx.ignore_reason))
        if ctx.already_replied:
            return self._done(MRDiscussionResult(status="already_replied", reason="the note has a reply"))
        if ctx.limited_reason:
            return await self._limited(data, ctx, ctx.limited_reason, ctx.limit_key)
        if workflow.patched("discussion-admission-v1"):
            # Spend limits before an agent slot is taken; an admitted run is what the limits count.
            admission: Admission = await workflow.execute_activity_method(
                DiscussionActivities.admit_discussion,
                AdmitDiscussionInput(
                    project_id=data.project_id,
                    mr_iid=data.mr_iid,
                    author_username=ctx.author_username,
                    author_id=ctx.author_id,
                ),
                start_to_close_timeout=GITLAB_CALL,
                retry_policy=GITLAB_RETRY,
            )
            if admission.reason:
                return await self._limited(data, ctx, admission.reason, admission.limit_key)
            # Project and MR too: a run started by hand has no search attributes from the API.
            workflow.upsert_search_attributes(
                [
                    GITLAB_USER.value_set(ctx.author_username),
                    GITLAB_PROJECT.value_set(str(data.project_id)),
                    MERGE_REQUEST_IID.value_set(data.mr_iid),
                ]
            )

        await self._reaction(data, on=True)
        try:
            run = await self._run_agent(data, ctx)
        except SlotRefused as refused:
            await self._reaction(data, on=False)
            return await self._limited(data, ctx, refused.reason, refused.key)
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.ensure_future(self._reaction(data, on=False)))
            raise
        except ActivityError as err:
            reason = _short_reason(err)
            self._step("failed")
            await self._post(data, ctx, failure=reason)
            await self._reaction(data, on=False)
            raise ApplicationError(f"discussion failed: {reason}", non_retryable=True) from err
        self._step("replying")
        posted = await self._post(data, ctx, run=run)
        await self._reaction(data, on=False)
        return self._done(
            MRDiscussionResult(
                status="replied" if posted.posted else "already_replied",
                push=run.push,
                commit_sha=run.commit_sha,
                reply_note_id=posted.note_id,
                resolved=posted.resolved,
            )
        )

    async def _limited(
        self, data: MRDiscussionInput, ctx: DiscussionContext, reason: str, key: str
    ) -> MRDiscussionResult:
        """No agent run; the MR is told why, once per limit key (a spammer gets one note, not one each)."""
        if key and ctx.discussion_id:
            await workflow.execute_activity_method(
                DiscussionActivities.post_limit_notice,
                LimitNoticeInput(
                    project_id=data.project_id,
                    mr_iid=data.mr_iid,
                    discussion_id=ctx.discussion_id,
                    reason=reason[:1000],
                    limit_key=key,
                ),
                start_to_close_timeout=GITLAB_CALL,
                retry_policy=GITLAB_RETRY,
            )
        return self._done(MRDiscussionResult(status="limited", reason=reason[:1000]))

    async def _run_agent(self, data: MRDiscussionInput, ctx: DiscussionContext) -> DiscussionRunResult:
        # Like reviews: at most N agent runs per project (ProjectAgentSlots), on the agent task queue.
        self._step("waiting for an agent slot of the project")
        async with self.agent_slot(data.project_id) as lease:
            self._step("running the agent")
            run = await self._execute_run(data, ctx)
            lease.tokens = run.tokens_used
            return run

    async def _execute_run(self, data: MRDiscussionInput, ctx: DiscussionContext) -> DiscussionRunResult:
        return await workflow.execute_activity_method(
            DiscussionActivities.run_discussion,
            DiscussionRunInput(
                project_id=data.project_id,
                mr_iid=data.mr_iid,
                note_id=data.note_id,
                discussion_id=ctx.discussion_id,
                author_username=ctx.author_username,
                may_push=ctx.may_push,
                no_push_reason=ctx.no_push_reason,
                own_finding=ctx.own_finding,
                workflow_id=workflow.info().workflow_id,
            ),
            task_queue=agent_task_queue(workflow.info().task_queue),
            start_to_close_timeout=AGENT_RUN,
            heartbeat_timeout=AGENT_HEARTBEAT,
            retry_policy=AGENT_RETRY,
        )

    async def _post(
        self,
        data: MRDiscussionInput,
        ctx: DiscussionContext,
        *,
        run: DiscussionRunResult | None = None,
        failure: str = "",
    ) -> PostDiscussionReplyResult:
        return await workflow.execute_activity_method(
            DiscussionActivities.post_discussion_reply,
            PostDiscussionReplyInput(
                project_id=data.project_id,
                mr_iid=data.mr_iid,
                note_id=data.note_id,
                discussion_id=ctx.discussion_id,
                workflow_id=workflow.info().workflow_id,
                run=run,
                failure=failure,
            ),
            start_to_close_timeout=GITLAB_CALL,
            retry_policy=GITLAB_RETRY,
        )

    async def _reaction(self, data: MRDiscussionInput, *, on: bool) -> None:
        await best_effort(
            DiscussionActivities.set_note_reaction,
            [data.project_id, data.mr_iid, data.note_id, on],
            f"{'set' if on else 'clear'} the note reaction",
        )

    def _done(self, result: MRDiscussionResult) -> MRDiscussionResult:
        self._step(result.status)
        return result
