"""One-shot set-up of a Temporal namespace for this service (Helm hook, compose, `make temporal`).

Idempotent: registers the custom search attributes that are missing and creates or updates the
polling Schedules. Waits for Temporal to come up first, since a hook may start before the server.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.service import RPCError, RPCStatusCode

from contracts import ids, temporal
from contracts.settings import Settings

log = logging.getLogger("bootstrap")

_INDEXED = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
}


async def _connect_with_patience(settings: Settings, attempts: int = 60) -> Client:
    for attempt in range(1, attempts + 1):
        try:
            return await temporal.connect(settings)
        except RuntimeError as exc:
            log.info(
                "waiting for Temporal at %s (%d/%d): %s", settings.temporal_address, attempt, attempts, exc
            )
            await asyncio.sleep(2)
    raise SystemExit(f"Temporal at {settings.temporal_address} did not answer")


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {
        key.name: _INDEXED[key.indexed_value_type]
        for key in temporal.SEARCH_ATTRIBUTES
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


async def bootstrap(settings: Settings) -> None:
    client = await _connect_with_patience(settings)
    added = await register_search_attributes(client, settings.temporal_namespace)
    log.info("search attributes registered: %s", ", ".join(added) or "all present already")
    for line in await ensure_schedules(client, settings):
        log.info("schedule %s", line)


# --- polling Schedules ------------------------------------------------------------------------------
def _schedule(
    workflow: str,
    schedule_id: str,
    every_s: int,
    settings: Settings,
    note: str,
    args: list[Any] | None = None,
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow, args=args or [], id=schedule_id, task_queue=settings.temporal_task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_s))]),
        # One poll at a time for the whole cluster, however many workers run; a slow poll makes the
        # next one skip rather than queue up.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=note),
    )


async def _upsert_schedule(client: Client, schedule_id: str, wanted: Schedule | None) -> str:
    handle = client.get_schedule_handle(schedule_id)
    try:
        await handle.describe()
        exists = True
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        exists = False
    if wanted is None:
        if exists:
            await handle.delete()
            return f"{schedule_id}: deleted (polling switched off)"
        return f"{schedule_id}: off"
    if not exists:
        try:
            await client.create_schedule(schedule_id, wanted)
            return f"{schedule_id}: created"
        except ScheduleAlreadyRunningError:
            pass  # a concurrent bootstrap created it: update below

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        # Keep what an operator set in the UI (paused, their note): only the action, spec and policy
        # follow the configuration.
        wanted.state = current.description.schedule.state
        return ScheduleUpdate(schedule=wanted)

    await handle.update(update)
    return f"{schedule_id}: updated"


async def ensure_schedules(client: Client, settings: Settings) -> list[str]:
    jira = (
        _schedule("PollJira", ids.JIRA_POLL_SCHEDULE_ID, settings.jira_poll_interval, settings,
                  "Finds Jira issues in the trigger status and starts ImplementIssue")
        if settings.jira_enabled
        else None
    )  # fmt: skip
    gitlab = (
        _schedule("PollGitLab", ids.GITLAB_POLL_SCHEDULE_ID, settings.gitlab_poll_interval, settings,
                  "Finds updated GitLab MRs and starts ReviewMR (GITLAB_POLL=true)",
                  # the interval is the base of the backoff after failed polls
                  [{"interval_s": settings.gitlab_poll_interval}])
        if settings.gitlab_poll
        else None
    )  # fmt: skip
    return [
        await _upsert_schedule(client, ids.JIRA_POLL_SCHEDULE_ID, jira),
        await _upsert_schedule(client, ids.GITLAB_POLL_SCHEDULE_ID, gitlab),
    ]
