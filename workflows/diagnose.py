"""Diagnose: an operator's "is this worker able to work?" check, runnable from the CLI or the UI.

`temporal workflow execute --type Diagnose --task-queue gitlab-copilot-agent --input '{}'`
returns what the worker sees: versions, executor, and whether GitLab, Jira, git and the Copilot CLI
answer. It posts nothing anywhere.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.diagnose import DiagnoseActivities
    from contracts.models import DiagnoseResult
    from workflows.inputs import NoInput, start_input


@workflow.defn(name="Diagnose")
class Diagnose:
    @workflow.run
    async def run(self, *inputs: Any) -> DiagnoseResult:
        start_input(NoInput, inputs)  # nothing, {} or null; anything else fails the run with the reason
        return await workflow.execute_activity(
            DiagnoseActivities.diagnose_worker,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
