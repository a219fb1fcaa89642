"""The FastAPI application: one Temporal client per process, created in the lifespan.

Run with `uvicorn api.app:create_app --factory`. Nothing imports `api/`; it imports `contracts/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from temporalio.client import Client

from api import codec as codec_api
from api import health, ingress, webhook
from api.identity import AgentIdentity
from api.limits import BodySizeLimit
from api.request_telemetry import RequestTelemetry, TracedStartsWhenRecorded
from api.starter import temporal_answered
from contracts import temporal
from contracts.codec import codec_from_settings
from contracts.hardening import make_undumpable
from contracts.seed_settings import warn_about_seed_settings
from contracts.settings import Settings, get_settings
from telemetry import setup as setup_telemetry


def create_app(settings: Settings | None = None, temporal_client: Client | None = None) -> FastAPI:
    settings = settings or get_settings()
    make_undumpable()  # no same-user process may read the webhook secret from /proc/<pid>/environ
    setup_telemetry(settings, "api")
    warn_about_seed_settings()  # no seed variable is ignored silently

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Lazy: the API starts (and /health answers) while Temporal is still down; /ready tells.
        # The SDK's default Runtime, not the measured one of telemetry.temporal_sdk: the API only
        # starts workflows, and draining the SDK's metric buffer into OpenTelemetry (a thread that
        # takes the GIL every 2 s) cost more CPU per delivery than the whole start (bench/); the
        # service's own metrics (deliveries, request durations) still come from the API.
        app.state.temporal = temporal_client or await temporal.connect(
            settings, lazy=True, fail_fast=True, tracing=TracedStartsWhenRecorded()
        )
        warm = asyncio.create_task(_keep_warm(app.state.temporal))
        # What start-up made (about 110,000 objects: FastAPI, pydantic, OpenTelemetry, the SDK) lives
        # as long as the process: frozen out of the collector, a full collection no longer walks it
        # in the middle of a delivery (400 ms on the loaded 2-core machine, a tail of the p99). No
        # collection first: what little garbage start-up left is not worth one here.
        gc.freeze()
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
    _serve(app, health.router)
    _serve(app, webhook.router)
    _mount_codec_server(app, settings)
    app.state.trusted_proxies = ingress.networks(settings.trusted_proxies)
    # Outermost first: telemetry, body size, then the path and IP allowlists (api/ingress.py).
    app.add_middleware(
        ingress.IngressGuard,
        paths=_paths(app.routes),
        allowlist=ingress.networks(settings.webhook_ip_allowlist),
        trusted_proxies=app.state.trusted_proxies,
    )
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


def _serve(app: FastAPI, router: APIRouter) -> None:
    """The router's routes as the app's own. `include_router` wraps a router in a branch that FastAPI
    re-checks on every request (its route version, then each candidate): 9 % of the API's CPU per
    delivery under the profiler, against 1 % for the baseline's route of its own (bench/)."""
    app.router.routes.extend(router.routes)


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
    _serve(app, codec_api.router)
    if settings.codec_cors_origins:
        # The Web UI calls the codec endpoint from the browser, so its origin must be allowed.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.codec_cors_origins,
            allow_methods=["POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-namespace"],
            allow_credentials=True,
        )
