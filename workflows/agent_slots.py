"""ProjectAgentSlots: at most N agent runs of one GitLab project at a time, across all workers.

One long-lived workflow per project (`agent-slots:<task queue>:<project_id>`) hands out slots in arrival order.
A flow asks for a slot with `agent_slot(...)` (signal-with-start through an activity, since workflow
code cannot start other workflows that way), waits for the `slot_granted` signal, runs its agent,
and releases the slot in a `finally`. A holder that disappears without releasing (terminated,
timed out) is noticed by a periodic liveness check and its slot is taken back. The queue is visible
in the Web UI through the `state` query, and each waiting flow's `progress` says it is queued.

Why not only worker slots: those bound one worker; a burst of 200 MRs in one project would still
take every agent slot of the cluster. The global bound is the agent task queue's worker slots and
its server-side rate limit (see worker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from contracts.slots import SlotsState, slots_id

with workflow.unsafe.imports_passed_through():
    from activities.slots import SlotActivities
    from workflows.inputs import start_input

__all__ = ["AgentSlotHolder", "ProjectAgentSlots", "SlotsState", "slots_id"]

LIVENESS_EVERY = timedelta(minutes=2)
CONTINUE_AFTER_EVENTS = 500
IDLE_EXIT = timedelta(minutes=30)


@workflow.defn(name="ProjectAgentSlots")
class ProjectAgentSlots:
    def __init__(self) -> None:
        self._limit = 1
        self._holders: list[str] = []
        self._waiting: deque[str] = deque()
        self._events = 0

    @workflow.signal
    def acquire(self, requester: str) -> None:
        self._events += 1
        if requester not in self._holders and requester not in self._waiting:
            self._waiting.append(requester)

    @workflow.signal
    def release(self, requester: str) -> None:
        self._events += 1
        if requester in self._holders:
            self._holders.remove(requester)
        elif requester in self._waiting:
            self._waiting.remove(requester)

    @workflow.signal
    def set_limit(self, limit: int) -> None:
        self._limit = max(1, limit)

    @workflow.query
    def state(self) -> SlotsState:
        return SlotsState(self._limit, list(self._holders), list(self._waiting))

    @workflow.run
    async def run(self, *inputs: Any) -> None:
        state = start_input(SlotsState, inputs)
        self._limit = max(1, state.limit)
        # Signals can be handled before run() starts (signal-with-start delivers them in the first
        # activation), so carried-over state is merged in front of what they queued, not assigned.
        self._holders = [h for h in state.holders if h not in self._holders] + self._holders
        self._waiting = deque([w for w in state.waiting if w not in self._waiting] + list(self._waiting))
        idle_since = workflow.now()
        while True:
            while self._waiting and len(self._holders) < self._limit:
                requester = self._waiting.popleft()
                try:
                    await workflow.get_external_workflow_handle(requester).signal("slot_granted")
                except Exception:  # the requester is gone (finished, terminated): skip it
                    workflow.logger.info("slot requester %s is gone", requester)
                    continue
                self._holders.append(requester)
            if self._holders or self._waiting:
                idle_since = workflow.now()
            elif workflow.now() - idle_since >= IDLE_EXIT:
                return  # the next acquire starts a fresh one
            if self._events >= CONTINUE_AFTER_EVENTS:
                workflow.continue_as_new(self.state())
            try:
                await workflow.wait_condition(
                    lambda: bool(self._waiting) and len(self._holders) < self._limit, timeout=LIVENESS_EVERY
                )
            except TimeoutError:
                await self._reclaim()

    async def _reclaim(self) -> None:
        if not self._holders:
            return
        alive = await workflow.execute_activity_method(
            SlotActivities.running_workflows,
            list(self._holders),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        self._holders = [h for h in self._holders if h in alive]


class AgentSlotHolder:
    """Mixin for workflows that run the agent: `async with self.agent_slot(project_id): ...`."""

    _slot_granted = False

    @workflow.signal(name="slot_granted")
    def slot_granted(self) -> None:
        self._slot_granted = True

    @contextlib.asynccontextmanager
    async def agent_slot(self, project_id: int) -> AsyncIterator[None]:
        """Hold one of the project's agent slots for the block. Released on success, failure and
        cancellation; not when the worker evicts the workflow from its cache (a BaseException that is
        neither): the run resumes elsewhere by replay and releases there."""
        try:
            await self.acquire_agent_slot(project_id)
            yield
        except (Exception, asyncio.CancelledError):
            await asyncio.shield(asyncio.ensure_future(self.release_agent_slot(project_id)))
            raise
        await self.release_agent_slot(project_id)

    async def acquire_agent_slot(self, project_id: int) -> None:
        self._slot_granted = False
        await workflow.execute_activity_method(
            SlotActivities.request_slot,
            args=[project_id, workflow.info().workflow_id],
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        )
        await workflow.wait_condition(lambda: self._slot_granted)

    async def release_agent_slot(self, project_id: int) -> None:
        try:
            await workflow.get_external_workflow_handle(
                slots_id(workflow.info().task_queue, project_id)
            ).signal("release", workflow.info().workflow_id)
        except Exception:  # the slots workflow reclaims slots of finished holders by itself
            workflow.logger.info("could not release the agent slot of project %s", project_id)
