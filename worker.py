"""The Temporal worker: every workflow and activity of the service, wired in one place.

python worker.py              run until SIGTERM/SIGINT, then drain in-flight activities
python worker.py bootstrap    register search attributes and create/update the Schedules, exit
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import build_activities
from activities.diagnose import model_provider_check
from activities.project_allowlist import resolve_gitlab_projects
from contracts import temporal
from contracts.hardening import make_undumpable
from contracts.seed_settings import warn_about_seed_settings
from contracts.settings import Settings, TaskExecutor, get_settings
from core import markers
from executors.work_dir import sweep_stale_run_dirs
from telemetry import setup as setup_telemetry
from telemetry.temporal_sdk import temporal_runtime
from telemetry.workflow_outcomes import WorkflowOutcomes
from workflows import WORKFLOWS, implement_issue, review_loop, review_mr

log = logging.getLogger("worker")


# Activities that run the agent: served on their own task queue with MAX_CONCURRENT_AGENT_RUNS slots
# per worker and an optional cluster-wide start rate, so a burst of MRs queues (visible in the UI as
# scheduled activities) instead of exhausting the cluster or the model provider's rate limit.
AGENT_ACTIVITIES = frozenset(
    {"run_review", "run_discussion", "implement_change", "implement_plan", "implement_answer_findings"}
)


class ServiceWorkers:
    """The worker of the main task queue and the worker of the agent task queue, run together, and
    the services they need while they run (the Job proxy of the Kubernetes executor)."""

    def __init__(
        self, workers: list[Worker], services: Sequence[AbstractAsyncContextManager[object]] = ()
    ) -> None:
        self.workers = workers
        self.services = list(services)

    async def __aenter__(self) -> ServiceWorkers:
        for service in self.services:
            await service.__aenter__()
        for worker in self.workers:
            await worker.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for worker in reversed(self.workers):
            await worker.__aexit__(*exc)
        for service in reversed(self.services):
            await service.__aexit__(None, None, None)


def _name(fn: Callable) -> str:
    defn = getattr(fn, "__temporal_activity_definition", None)
    return defn.name if defn is not None else fn.__name__


def build_worker(
    client: Client, settings: Settings, activities: list[Callable] | None = None
) -> ServiceWorkers:
    """The workers; `activities` replaces `build_activities(settings)` (tests wrap an executor)."""
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("pydantic", "contracts")
    )
    secret = settings.marker_key.get_secret_value() if settings.marker_key else ""
    token = settings.gitlab_token.get_secret_value() if settings.gitlab_token else ""
    if keys := markers.keys_from(secret, token):
        markers.use_keys(keys)  # the agent never holds either secret, so it cannot sign a marker
    every = build_activities(settings) if activities is None else activities
    agent = [fn for fn in every if _name(fn) in AGENT_ACTIVITIES]
    general = [fn for fn in every if _name(fn) not in AGENT_ACTIVITIES]
    main = Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=general,
        interceptors=[WorkflowOutcomes()],  # tracing comes with the client (contracts.temporal)
        # Activities are synchronous (python-gitlab, git) and run on this pool.
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=16),
        max_concurrent_activities=16,
        workflow_runner=runner,
        graceful_shutdown_timeout=timedelta(seconds=30),
    )
    agent_worker = Worker(
        client,
        task_queue=temporal.agent_task_queue(settings.temporal_task_queue),
        activities=agent,
        interceptors=[WorkflowOutcomes()],
        activity_executor=concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.max_concurrent_agent_runs
        ),
        max_concurrent_activities=settings.max_concurrent_agent_runs,
        max_task_queue_activities_per_second=settings.agent_runs_per_second or None,
        graceful_shutdown_timeout=timedelta(seconds=30),
    )
    services = []
    if settings.task_executor == TaskExecutor.KUBERNETES:
        from executors.job_proxy import JobProxy

        services.append(JobProxy(settings))  # Jobs reach model and GitLab only through it
    return ServiceWorkers([main, agent_worker], services)


# A per-run directory older than any run can live (the longest agent activity, plus its clean-up) is
# one a killed worker left behind.
RUN_DIR_MAX_AGE = max(review_mr.AGENT_RUN, implement_issue.AGENT_RUN, review_loop.FIX_RUN) + timedelta(
    minutes=15
)


async def start_up_checks(settings: Settings) -> None:
    """At worker start: stale run directories swept (before any run can make one), a missing model
    provider warned about (every agent run would be refused), then GITLAB_PROJECTS
    resolved while the worker already serves (a slow GitLab delays nothing; until it answers, the
    entries match in their own form, and a bad entry is warned about once)."""
    await asyncio.to_thread(sweep_stale_run_dirs, settings.work_path, RUN_DIR_MAX_AGE)
    provider = model_provider_check(settings)
    if not provider.ok:
        log.warning("%s", provider.detail)
    resolving = asyncio.create_task(asyncio.to_thread(resolve_gitlab_projects, settings))
    _BACKGROUND.add(resolving)
    resolving.add_done_callback(_BACKGROUND.discard)


_BACKGROUND: set[asyncio.Task] = set()


async def run(settings: Settings) -> None:
    await start_up_checks(settings)
    client = await temporal.connect(settings, runtime=temporal_runtime())
    worker = build_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queue %s at %s", settings.temporal_task_queue, settings.temporal_address)
    async with worker:
        await stop.wait()
        log.info("shutting down: draining in-flight activities")
    log.info("worker stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="worker.py",
        description="gitlab-copilot-agent Temporal worker: runs the ReviewMR, MRDiscussion, "
        "ImplementIssue and polling workflows and their activities on TEMPORAL_TASK_QUEUE.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "bootstrap"],
        help="run: serve the task queue (default); bootstrap: register search attributes and Schedules",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    make_undumpable()  # the agent runs as our user with the local executor: keep our environ from it
    setup_telemetry(settings, "worker")
    warn_about_seed_settings()  # no seed variable is ignored silently
    if args.command == "bootstrap":
        from bootstrap import bootstrap

        asyncio.run(bootstrap(settings))
        # The work is done; skip interpreter finalisation, where the SDK's native runtime threads
        # can abort the process ("PyGILState_Release ... finalizing") and turn success into a crash.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
