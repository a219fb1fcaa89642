"""The retry policies the workflows share, in two families, so a change to "how long we wait for a
flaky GitLab or Jira" is made once.

- `service_retry`: GitLab/Jira calls. Hiccups (429/5xx, resets) are retried for about 10 minutes:
  with Retry-After honoured the attempts can come quickly, so the count is generous; 4xx arrive as
  non-retryable errors already and stop at once.
- `agent_retry`: activities around an agent run. Few attempts, since each one is a whole run
  (minutes, tokens); its steps are idempotent (a retry finds its own earlier push or reply).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy


def service_retry(*non_retryable: str) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=25,
        non_retryable_error_types=list(non_retryable) or None,
    )


def agent_retry(attempts: int, *non_retryable: str) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=5),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=2),
        maximum_attempts=attempts,
        non_retryable_error_types=list(non_retryable) or None,
    )
