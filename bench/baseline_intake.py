"""The reference the API's webhook intake is measured against: the least a correct handler does.

A minimal FastAPI app that checks the token, parses the JSON, and calls `start_workflow` for a merge
request event with REJECT_DUPLICATE (the workflow ID is the dedup): no validation model, no
filters, no search attributes, no tracing, no metrics. bench/bench_webhook_intake.py runs it as its
own uvicorn process next to the API, on the same Temporal server, and prints the API's ratios.

    uvicorn bench.baseline_intake:create_app --factory --port 8001   (settings from the environment)
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError

from contracts.settings import get_settings


def create_app() -> FastAPI:
    settings = get_settings()
    secret = (
        settings.gitlab_webhook_secret.get_secret_value().encode() if settings.gitlab_webhook_secret else b""
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.client = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
        )
        yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ready")
    async def ready() -> dict:
        return {"status": "ok"}

    @app.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        if not secret or not hmac.compare_digest(request.headers.get("x-gitlab-token", "").encode(), secret):
            return JSONResponse({"status": "rejected"}, 401)
        payload = json.loads(await request.body())
        project, attrs = payload["project"]["id"], payload["object_attributes"]
        workflow_id = f"review:{project}:{attrs['iid']}:{attrs['last_commit']['id']}"
        try:
            await request.app.state.client.start_workflow(
                "ReviewMR",
                {"project_id": project, "mr_iid": attrs["iid"], "head_sha": attrs["last_commit"]["id"]},
                id=workflow_id,
                task_queue=settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return JSONResponse({"status": "duplicate", "workflow_id": workflow_id}, 200)
        return JSONResponse({"status": "queued", "workflow_id": workflow_id}, 202)

    return app
