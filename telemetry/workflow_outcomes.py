"""Counts and times finished runs of the main flows, whatever their code does: a worker interceptor
around each workflow's run method records `<flow>s{outcome}` and `<flow>_duration_seconds{outcome}`.

The outcome is the result's `status` (every flow result has one: posted, skipped, replied, ...),
"failed" when the workflow fails, "cancelled" when it is cancelled. Nothing is recorded while
replaying history, so a run is counted once, not once per worker that replays it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Counter, Histogram
from temporalio import workflow
from temporalio.exceptions import CancelledError, FailureError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from telemetry import metrics


@dataclass(frozen=True)
class _Flow:
    count: Counter
    duration: Histogram


FLOWS: dict[str, _Flow] = {
    "ReviewMR": _Flow(metrics.reviews, metrics.review_duration),
    "MRDiscussion": _Flow(metrics.discussions, metrics.discussion_duration),
    "ImplementIssue": _Flow(metrics.implementations, metrics.implementation_duration),
}


def outcome_of(result: Any) -> str:
    status = result.get("status") if isinstance(result, dict) else getattr(result, "status", None)
    return str(getattr(status, "value", status))[:40] if status is not None else "completed"


def _record(outcome: str) -> None:
    info = workflow.info()
    flow = FLOWS.get(info.workflow_type)
    if flow is None or workflow.unsafe.is_replaying():
        return
    seconds = max((workflow.now() - info.workflow_start_time).total_seconds(), 0.0)
    # The instruments are ordinary (non-workflow) code; recording has no effect on the workflow.
    with workflow.unsafe.sandbox_unrestricted():
        flow.count.add(1, {"outcome": outcome})
        flow.duration.record(seconds, {"outcome": outcome})


class _Inbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        try:
            result = await super().execute_workflow(input)
        except (asyncio.CancelledError, CancelledError):
            _record("cancelled")
            raise
        except workflow.ContinueAsNewError:
            raise
        except FailureError:
            # Only Temporal failures fail the workflow; other exceptions fail (and retry) the task.
            _record("failed")
            raise
        _record(outcome_of(result))
        return result


class WorkflowOutcomes(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _Inbound
