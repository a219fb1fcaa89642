"""PollGitLab: started by the Schedule `poll-gitlab` every GITLAB_POLL_INTERVAL seconds when
GITLAB_POLL=true, for GitLab instances that cannot send webhooks.

The watermark (newest `updated_at` seen) lives in workflow state across runs: each run returns it,
and the next scheduled run reads it as its *last completion result*, which the Temporal server keeps
with the Schedule (it survives worker and server restarts; a failed run does not replace it). No
input is needed, so the Schedule's action never changes. A run started by hand, with no previous
result, looks back FIRST_POLL_LOOKBACK. Reviews are started under the webhook's IDs, so webhook and
poller never review the same head twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.polling import PollingActivities
    from contracts.implement import PollGitLabResult
    from workflows.inputs import NoInput, start_input

POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
    non_retryable_error_types=["ConfigurationError"],
)


@workflow.defn(name="PollGitLab")
class PollGitLab:
    @workflow.run
    async def run(self, *inputs: Any) -> PollGitLabResult:
        start_input(NoInput, inputs)  # the Schedule passes nothing; a manual start may pass {}
        previous = workflow.get_last_completion_result(PollGitLabResult)
        return await workflow.execute_activity_method(
            PollingActivities.poll_gitlab,
            previous.watermark if previous else None,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=POLL_RETRY,
        )
