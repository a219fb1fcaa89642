"""PollGitLab: started by the Schedule `poll-gitlab` every GITLAB_POLL_INTERVAL seconds when
GITLAB_POLL=true, for GitLab instances that cannot send webhooks.

The watermark (newest `updated_at` seen) lives in workflow state across runs: each run returns it,
and the next scheduled run reads it as its *last completion result*, which the Temporal server keeps
with the Schedule (it survives worker and server restarts; a failed run does not replace it). No
input is needed, so the Schedule's action never changes. A run started by hand, with no previous
result, looks back FIRST_POLL_LOOKBACK. Reviews are started under the webhook's IDs, so webhook and
poller never review the same head twice.

Backoff after failed polls, as the seed's poller loop had (its sleep doubled after each failure, at
most 300 s): a run whose poll fails (after the activity's own retries) fails with `PollGitLabFailed`,
carrying how many runs in a row failed and when. The Schedule hands that failure to its next run
(`workflow.get_last_failure()`, kept by the Temporal server like the last completion result), and a run
that starts less than `backoff_delay(failures, interval)` after the last failure does not poll: it
fails the same way with the same count, so the next one still knows (`PollGitLabBackoff`; both show
as failed runs in the Schedule and in /health's `failures`). The delay is the interval doubled per
failure, at most 300 s, never less than the interval (the Schedule fires no sooner anyway). The first
successful poll ends it. Everything is computed from `workflow.now()` and the failure's details, so
replay is deterministic.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.polling import PollingActivities
    from contracts.implement import PollGitLabInput, PollGitLabResult
    from workflows.inputs import start_input

POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
    non_retryable_error_types=["ConfigurationError"],
)


BACKOFF_MAX = timedelta(seconds=300)
FAILED = "PollGitLabFailed"
BACKING_OFF = "PollGitLabBackoff"


def backoff_delay(failures: int, interval_s: int) -> timedelta:
    """How long after the last failed poll the next one waits: the interval doubled per failure in a
    row, at most 300 s (the seed's cap), never less than the interval."""
    if failures <= 0:
        return timedelta(0)
    interval = timedelta(seconds=interval_s)
    return max(interval, min(interval * 2 ** min(failures, 20), BACKOFF_MAX))


def _failed_in_a_row() -> tuple[int, datetime] | None:
    """(failures in a row, time of the last failed poll) from the previous run's failure, if it was ours."""
    failure = workflow.get_last_failure()
    while failure is not None and not isinstance(failure, ApplicationError):
        failure = failure.__cause__
    if not isinstance(failure, ApplicationError) or failure.type not in (FAILED, BACKING_OFF):
        return None
    try:
        details = failure.details[0]
        return int(details["failures"]), datetime.fromisoformat(details["failed_at"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def _fail(kind: str, message: str, failures: int, failed_at: datetime) -> ApplicationError:
    return ApplicationError(
        message, {"failures": failures, "failed_at": failed_at.isoformat()}, type=kind, non_retryable=True
    )


@workflow.defn(name="PollGitLab")
class PollGitLab:
    @workflow.run
    async def run(self, *inputs: Any) -> PollGitLabResult:
        data = start_input(PollGitLabInput, inputs)  # the Schedule passes its interval; by hand: {}
        previous = workflow.get_last_completion_result(PollGitLabResult)
        failed = _failed_in_a_row()
        if failed is not None:
            failures, failed_at = failed
            resume_at = failed_at + backoff_delay(failures, data.interval_s)
            if workflow.now() < resume_at:
                raise _fail(
                    BACKING_OFF,
                    f"not polling: {failures} poll(s) in a row failed, next poll at {resume_at.isoformat()}",
                    failures,
                    failed_at,
                )
        try:
            return await workflow.execute_activity_method(
                PollingActivities.poll_gitlab,
                previous.watermark if previous else None,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=POLL_RETRY,
            )
        except ActivityError as exc:
            failures = (failed[0] if failed else 0) + 1
            cause = exc.cause.message if isinstance(exc.cause, ApplicationError) else str(exc.cause or exc)
            raise _fail(
                FAILED, f"GitLab poll failed ({failures} in a row): {cause[:300]}", failures, workflow.now()
            ) from exc
