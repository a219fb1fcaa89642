"""GET /health (liveness: the process answers) and GET /ready (readiness: Temporal reachable, plus
the state of each enabled poller Schedule).

With GITLAB_POLL=true, /health also carries the seed's `gitlab_poller` block, read from the
`poll-gitlab` Schedule: `running` (it exists and is not paused), `failures` (failed poll runs since
the last one that completed) and `watermark` (what that completed run handed to the next). It is
best effort: when Temporal does not answer in time the values are null and /health still answers
200, so liveness never depends on Temporal (that is /ready's job).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from contracts.ids import GITLAB_POLL_SCHEDULE_ID, JIRA_POLL_SCHEDULE_ID
from contracts.settings import Settings

router = APIRouter()
_READY_TIMEOUT_S = 3.0
_HEALTH_TIMEOUT_S = 1.5  # inside the chart's 3 s liveness timeout
_FAILED = {
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT,
    WorkflowExecutionStatus.TERMINATED,
}


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    if not request.app.state.settings.gitlab_poll:
        return {"status": "ok"}
    try:
        poller = await asyncio.wait_for(_gitlab_poller(request.app.state.temporal), _HEALTH_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - unknown for now; liveness is not Temporal's to decide
        poller = {"running": None, "failures": None, "watermark": None}
    return {"status": "ok", "gitlab_poller": poller}


async def _gitlab_poller(client: Client) -> dict[str, Any]:
    try:
        described = await client.get_schedule_handle(GITLAB_POLL_SCHEDULE_ID).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return {"running": False, "failures": 0, "watermark": None}
        raise
    failures, watermark = 0, None
    for action in reversed(described.info.recent_actions):  # newest first
        started = action.action
        handle = client.get_workflow_handle(started.workflow_id, run_id=started.first_execution_run_id)
        status = (await handle.describe()).status
        if status == WorkflowExecutionStatus.COMPLETED:
            watermark = (await handle.result()).get("watermark")
            break
        failures += status in _FAILED
    return {"running": not described.schedule.state.paused, "failures": failures, "watermark": watermark}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    client = request.app.state.temporal
    try:
        await asyncio.wait_for(client.service_client.check_health(), _READY_TIMEOUT_S)
    except Exception as exc:  # any failure to reach Temporal means "not ready", with the reason
        reason = f"temporal unreachable at {request.app.state.settings.temporal_address}"
        return JSONResponse(
            {
                "status": "unavailable",
                "temporal": "unreachable",
                "reason": reason,
                "error": type(exc).__name__,
            },
            status_code=503,
        )
    schedules = await _schedules(client, request.app.state.settings)
    return JSONResponse({"status": "ok", "temporal": "ok", "schedules": schedules})


async def _schedules(client: Client, settings: Settings) -> dict[str, dict[str, object]]:
    """Each enabled poller's Schedule: does it exist, is it paused (operators pause them in the UI).
    A missing Schedule does not make the API unready: `python worker.py bootstrap` creates it."""
    enabled = [GITLAB_POLL_SCHEDULE_ID] if settings.gitlab_poll else []
    enabled += [JIRA_POLL_SCHEDULE_ID] if settings.jira_enabled else []
    return {schedule_id: await _schedule_state(client, schedule_id) for schedule_id in enabled}


async def _schedule_state(client: Client, schedule_id: str) -> dict[str, object]:
    try:
        described = await asyncio.wait_for(
            client.get_schedule_handle(schedule_id).describe(), _READY_TIMEOUT_S
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return {"exists": False, "paused": None}
        return {"exists": None, "paused": None, "error": exc.status.name if exc.status else "unknown"}
    except TimeoutError:
        return {"exists": None, "paused": None, "error": "timeout"}
    return {"exists": True, "paused": described.schedule.state.paused}
