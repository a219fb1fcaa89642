"""The service on one machine against stand-ins: GitLab, a scripted model, real Temporal.

Used by the flow tests, `make demo` and the benchmarks, so all three exercise the same wiring:
`api.app.create_app` on uvicorn and `worker.build_worker` in-process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from api.app import create_app
from contracts import temporal
from contracts.settings import REPO_ROOT, Settings
from devenv.uvicorn_thread import UvicornThread
from standins.gitlab import GitLabStandIn
from standins.model_server import ModelServer
from worker import build_worker

AGENT = "copilot-agent"
DEVELOPER = "dev"
WEBHOOK_SECRET = "stack-webhook-secret"


def stack_settings(
    *,
    temporal_address: str,
    task_queue: str,
    gitlab: GitLabStandIn,
    agent_token: str,
    model: ModelServer,
    work: Path,
    **overrides: object,
) -> Settings:
    values: dict[str, object] = {
        "temporal_address": temporal_address,
        "temporal_task_queue": task_queue,
        "gitlab_url": gitlab.url,
        "gitlab_token": agent_token,
        "gitlab_webhook_secret": WEBHOOK_SECRET,
        "copilot_provider_type": "openai",
        "copilot_provider_base_url": model.base_url,
        "copilot_model": "scripted-model",
        "copilot_cache_dir": str(REPO_ROOT / ".data" / "copilot-cache"),
        "copilot_timeout": 120,
        "work_dir": str(work),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Stack:
    settings: Settings
    client: Client
    gitlab: GitLabStandIn
    model: ModelServer
    api_url: str


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, client: Client | None = None
) -> AsyncIterator[tuple[Client, str]]:
    """The worker (in-process) and the API (uvicorn thread) for `settings`."""
    client = client or await temporal.connect(settings)
    worker = build_worker(client, settings)
    with UvicornThread(create_app(settings, temporal_client=client)) as api:
        async with worker:
            yield client, api.url
