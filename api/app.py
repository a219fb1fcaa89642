"""The FastAPI application: one Temporal client per process, created in the lifespan.

Run with `uvicorn api.app:create_app --factory`. Nothing imports `api/`; it imports `contracts/`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api import health, webhook
from api.identity import AgentIdentity
from api.limits import BodySizeLimit
from contracts import temporal
from contracts.settings import Settings, get_settings


def create_app(settings: Settings | None = None, temporal_client: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Lazy: the API starts (and /health answers) while Temporal is still down; /ready tells.
        app.state.temporal = temporal_client or await temporal.connect(settings, lazy=True)
        yield

    app = FastAPI(
        title="gitlab-copilot-agent",
        lifespan=lifespan,
        docs_url="/docs" if settings.enable_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.enable_docs else None,
    )
    app.state.settings = settings
    app.state.identity = AgentIdentity(settings)
    app.include_router(health.router)
    app.include_router(webhook.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_webhook_body_bytes)
    return app
