"""PollJira: started by the Schedule `poll-jira` every JIRA_POLL_INTERVAL seconds (overlap SKIP, so
one poll at a time per cluster however many workers run; pausable in the Web UI). One activity does
the JQL searches and starts ImplementIssue per hit under `implement:<KEY>`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.polling import PollingActivities
    from contracts.implement import PollJiraResult
    from workflows.inputs import NoInput, start_input

POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,  # the next scheduled poll tries again anyway
    non_retryable_error_types=["ConfigurationError"],
)


@workflow.defn(name="PollJira")
class PollJira:
    @workflow.run
    async def run(self, *inputs: Any) -> PollJiraResult:
        start_input(NoInput, inputs)  # the Schedule passes nothing; a manual start may pass {}
        return await workflow.execute_activity_method(
            PollingActivities.poll_jira,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=POLL_RETRY,
        )
