"""Activities of the per-project agent slots: ask for a slot, and check which holders still live."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from activities.http_errors import activity_errors
from contracts.settings import Settings
from contracts.slots import SlotsState, slots_id


class SlotActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @activity.defn(name="request_agent_slot")
    @activity_errors
    async def request_slot(self, project_id: int, requester: str, fork_author: str = "") -> None:
        """Signal-with-start the project's slots workflow: queue `requester` for a slot
        (`fork_author`: the author of the fork MR it reviews, for the per-author cap)."""
        client: Client = activity.client()
        await client.start_workflow(
            "ProjectAgentSlots",
            SlotsState(
                limit=self.settings.max_agent_runs_per_project,
                daily_cap=self.settings.agent_runs_per_project_per_day,
                max_waiting=self.settings.max_queued_agent_runs_per_project,
                token_cap=self.settings.agent_tokens_per_project_per_day,
                fork_cap=self.settings.fork_reviews_per_author_per_day,
            ),
            id=slots_id(activity.info().task_queue, project_id),
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="acquire",
            # The limits travel with every request, so a changed setting reaches a running slots workflow.
            start_signal_args=[
                requester,
                self.settings.agent_runs_per_project_per_day,
                self.settings.max_queued_agent_runs_per_project,
                self.settings.agent_tokens_per_project_per_day,
                self.settings.fork_reviews_per_author_per_day,
                fork_author,
            ],
        )

    @activity.defn(name="running_workflows")
    @activity_errors
    async def running_workflows(self, workflow_ids: list[str]) -> list[str]:
        client: Client = activity.client()
        alive = []
        for workflow_id in workflow_ids:
            try:
                description = await client.get_workflow_handle(workflow_id).describe()
            except RPCError:
                continue  # unknown: not alive
            if description.status == WorkflowExecutionStatus.RUNNING:
                alive.append(workflow_id)
        return alive
