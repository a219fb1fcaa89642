"""GET /health (liveness: the process answers) and GET /ready (readiness: Temporal reachable)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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
    return JSONResponse({"status": "ok", "temporal": "ok"})
