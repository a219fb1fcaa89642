"""The Temporal worker: every workflow and activity of the service, wired in one place.

python worker.py              run until SIGTERM/SIGINT, then drain in-flight activities
python worker.py bootstrap    register search attributes and create/update the Schedules, exit
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import signal
import sys
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import build_activities
from contracts import temporal
from contracts.settings import Settings, get_settings
from workflows import WORKFLOWS

log = logging.getLogger("worker")


def build_worker(client: Client, settings: Settings) -> Worker:
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("pydantic", "contracts")
    )
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(settings),
        # Activities are synchronous (python-gitlab, git, the CLI) and run on this pool.
        activity_executor=concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.max_concurrent_agent_runs * 4
        ),
        max_concurrent_activities=settings.max_concurrent_agent_runs * 4,
        workflow_runner=runner,
        graceful_shutdown_timeout=timedelta(seconds=30),
    )


async def run(settings: Settings) -> None:
    client = await temporal.connect(settings)
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
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "bootstrap":
        from bootstrap import bootstrap

        asyncio.run(bootstrap(settings))
        return 0
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
