"""ReviewBundle: one agent run over one bundle of a large merge request, a child of ReviewMR.

ReviewMR splits a diff over one run's budget into bundles of related files
(core/review_bundles.py) and starts one ReviewBundle per bundle, ID `<review id>:bundle-<k>-of-<n>`.
Each takes its own slot of the project (ProjectAgentSlots: the project's concurrency, daily runs and
token budget hold per run, and a bundle is queued as a review), runs the reviewer on its files with
the agent retry policy, and hands its findings back; it publishes nothing. The parent merges the
bundles' findings and publishes once. Cancelling the parent (superseded by a newer push, or an
operator) cancels every bundle still running.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from contracts.coverage import ReviewBundleInput
    from contracts.models import ReviewPrep, ReviewRunInput, ReviewRunResult
    from workflows.agent_slots import AgentSlotHolder
    from workflows.inputs import start_input
    from workflows.review_mr import _short_reason, run_reviewer

BUNDLE_FAILED = "ReviewBundleFailed"


def bundle_id(parent_id: str, index: int, count: int) -> str:
    """`review:<project>:<iid>:<sha>:bundle-2-of-7`: starts like a review, so its slot request is
    queued with the reviews, before discussion answers."""
    return f"{parent_id}:bundle-{index + 1}-of-{count}"


@workflow.defn(name="ReviewBundle")
class ReviewBundle(AgentSlotHolder):
    def __init__(self) -> None:
        self._step = "starting"

    @workflow.query
    def progress(self) -> str:
        return self._step

    @workflow.run
    async def run(self, *inputs: Any) -> ReviewRunResult:
        data = start_input(ReviewBundleInput, inputs)
        run_input = ReviewRunInput(
            project_id=data.project_id,
            mr_iid=data.mr_iid,
            head_sha=data.head_sha,
            workflow_id=workflow.info().workflow_id,
        )
        prep = ReviewPrep(
            task=data.task, open_thread_ids=data.open_thread_ids, last_reviewed_sha=data.last_reviewed_sha
        )
        self._step = "waiting for an agent slot of the project"
        try:
            async with self.agent_slot(data.project_id, data.fork_author) as lease:
                self._step = f"reviewing {len(data.task.files)} file(s)"
                run = await run_reviewer(run_input, prep)
                lease.tokens = run.tokens_used
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                raise
            # Its retries are spent: the bundle fails (visible as such in the Web UI) with a short,
            # secret-free reason the parent puts next to the bundle's files in the summary.
            self._step = "failed"
            raise ApplicationError(_short_reason(err), type=BUNDLE_FAILED, non_retryable=True) from err
        self._step = "done"
        return run
