"""Activities whose failure must never fail the run (the 👀 reactions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError


async def best_effort(method: Callable[..., Any], args: Sequence[Any], what: str) -> None:
    try:
        await workflow.execute_activity_method(
            method,
            args=list(args),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
    except ActivityError:
        workflow.logger.info("could not %s (best effort, the run goes on)", what)
