"""The agent container of an agent Job: `python -m executors.job_runner --repo /workspace/repo`.

Reads its task from AGENT_TASK (see k8s_channel), builds its settings from its own environment (the
model provider's, nothing of GitLab's), runs the same `run_task` as the local executor on the clone
the init container prepared, and prints the result frame as the last thing on stdout. A failure is
printed as an error frame (type and secret-free message) and exits 1, so the Job fails visibly and
the executor can tell a refused run (ValueError: configuration) from one worth retrying.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from contracts.settings import Settings
from executors.copilot_cli import scrub
from executors.k8s_channel import TASK_ENV, ResultTooLarge, decode_task, error_frame, result_frame
from executors.sandbox import run_task


def _fail(kind: str, message: str, secrets: list[str]) -> int:
    sys.stdout.write(error_frame(kind, scrub(message, secrets)))
    sys.stdout.flush()
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executors.job_runner")
    parser.add_argument("--repo", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        # No .env: the container's environment is the whole configuration.
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    except ValidationError as exc:
        return _fail("ValueError", f"invalid Job environment: {exc.error_count()} errors", [])
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)
    secrets = [s for s in settings.secret_values() if len(s) >= 4]
    try:
        task = decode_task(os.environ.get(TASK_ENV, ""))
        traceparent = os.environ.get("TRACEPARENT") or None
        result = asyncio.run(run_task(task, args.repo, settings, traceparent=traceparent))
        frame = result_frame(result)
    except ResultTooLarge as exc:
        return _fail("ResultTooLarge", str(exc), secrets)
    except Exception as exc:  # every failure leaves as an error frame, not as a bare traceback
        # ValueError (and its subclasses) means "refused before it ran": the executor maps it so.
        kind = "ValueError" if isinstance(exc, ValueError) else type(exc).__name__
        return _fail(kind, f"{type(exc).__name__}: {exc}", secrets)
    sys.stdout.write(frame)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
