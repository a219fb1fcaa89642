"""The FastAPI application: one Temporal client per process, created in the lifespan.

Run with `uvicorn api.app:create_app --factory`. Nothing imports `api/`; it imports `contracts/`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from temporalio.client import Client

from api import codec as codec_api
from api import health, webhook
from api.identity import AgentIdentity
from api.limits import BodySizeLimit
from api.request_telemetry import RequestTelemetry
from api.starter import temporal_answered
from contracts import temporal
from contracts.codec import codec_from_settings
from contracts.hardening import make_undumpable
from contracts.settings import Settings, get_settings
from telemetry import setup as setup_telemetry


def create_app(settings: Settings | None = None, temporal_client: Client | None = None) -> FastAPI:
    settings = settings or get_settings()
    make_undumpable()  # no same-user process may read the webhook secret from /proc/<pid>/environ
    setup_telemetry(settings, "api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Lazy: the API starts (and /health answers) while Temporal is still down; /ready tells.
        # The SDK's default Runtime, not the measured one of telemetry.temporal_sdk: the API only
        # starts workflows, and draining the SDK's metric buffer into OpenTelemetry (a thread that
        # takes the GIL every 2 s) cost more CPU per delivery than the whole start (bench/); the
        # service's own metrics (deliveries, request durations) still come from the API.
        app.state.temporal = temporal_client or await temporal.connect(settings, lazy=True, fail_fast=True)
        warm = asyncio.create_task(_keep_warm(app.state.temporal))
        try:
            yield
        finally:
            warm.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warm

    app = FastAPI(
        title="gitlab-copilot-agent",
        lifespan=lifespan,
        docs_url="/docs" if settings.enable_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.enable_docs else None,
        # FastAPI's own OpenTelemetry spans, metrics and logs switch on once a global provider exists
        # (telemetry.setup makes one): off, RequestTelemetry below records the one span and metric.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.identity = AgentIdentity(settings)
    app.include_router(health.router)
    app.include_router(webhook.router)
    _mount_codec_server(app, settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_webhook_body_bytes)
    # One span and one duration per request (api/request_telemetry.py says why not the FastAPI
    # instrumentation). Probes are polled every few seconds; tracing them would drown the traces.
    app.add_middleware(
        RequestTelemetry, routes=_paths(app.routes), excluded={"/health", "/ready", "/metrics"}
    )
    return app


KEEP_WARM_S = 10.0


async def _keep_warm(client: Client) -> None:
    """Keep the connection to Temporal open (and re-open it after an outage) off the request path,
    so a webhook neither waits for a connection handshake nor finds a stale channel."""
    while True:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.service_client.check_health(), 2.0)
            temporal_answered(client)
        await asyncio.sleep(KEEP_WARM_S)


def _paths(routes: Iterable[Any]) -> set[str]:
    """The paths the app serves (FastAPI wraps each included router, whose routes carry the prefix)."""
    paths: set[str] = set()
    for route in routes:
        if hasattr(route, "path"):
            paths.add(route.path)
        elif hasattr(route, "original_router"):
            paths |= _paths(route.original_router.routes)
    return paths


def _mount_codec_server(app: FastAPI, settings: Settings) -> None:
    codec = codec_from_settings(settings)
    if codec is None or settings.codec_server_token is None:
        return
    app.state.codec = codec
    app.include_router(codec_api.router)
    if settings.codec_cors_origins:
        # The Web UI calls the codec endpoint from the browser, so its origin must be allowed.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.codec_cors_origins,
            allow_methods=["POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-namespace"],
            allow_credentials=True,
        )
