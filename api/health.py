"""GET /health (liveness: the process answers) and GET /ready (readiness: Temporal reachable, plus
the state of each enabled poller Schedule)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from contracts.ids import GITLAB_POLL_SCHEDULE_ID, JIRA_POLL_SCHEDULE_ID
from contracts.settings import Settings

router = APIRouter()
_READY_TIMEOUT_S = 3.0


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


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
