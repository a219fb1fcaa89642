"""The agent container of an agent Job: `python -m executors.job_runner --repo /workspace/repo
--out /result/result.json`.

Reads its task from AGENT_TASK (see k8s_channel), builds its settings from its own environment (the
model proxy's address and this Job's lease, nothing else), runs the same `run_task` as the local
executor on the clone the init container prepared, and writes the outcome to `--out`: the result,
or an error (type and secret-free message; ValueError means "refused before it ran", so the executor
can tell configuration from something worth retrying). It exits 0 either way, so the `result`
container runs next and signs what it finds; this container holds no key and never prints a frame.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contracts.settings import Settings
from executors.copilot_cli import scrub
from executors.k8s_channel import (
    TASK_ENV,
    ResultTooLarge,
    decode_task,
    error_payload,
    result_payload,
    write_result,
)
from executors.process_sandbox import JobContainer
from executors.sandbox import run_task


def _outcome(repo: Path) -> dict[str, Any]:
    try:
        # No .env: the container's environment is the whole configuration.
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    except ValidationError as exc:
        return error_payload("ValueError", f"invalid Job environment: {exc.error_count()} errors")
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)
    secrets = [s for s in settings.secret_values() if len(s) >= 4]
    try:
        task = decode_task(os.environ.get(TASK_ENV, ""))
        traceparent = os.environ.get("TRACEPARENT") or None
        # The pod is this run's sandbox (executors/k8s_spec.py); processes start directly in it.
        result = asyncio.run(run_task(task, repo, settings, sandbox=JobContainer(), traceparent=traceparent))
        return result_payload(result)
    except ResultTooLarge as exc:
        return error_payload("ResultTooLarge", scrub(str(exc), secrets))
    except Exception as exc:  # every failure leaves as an error result, not as a bare traceback
        kind = "ValueError" if isinstance(exc, ValueError) else type(exc).__name__
        return error_payload(kind, scrub(f"{type(exc).__name__}: {exc}", secrets))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executors.job_runner")
    parser.add_argument("--repo", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    outcome = _outcome(args.repo)
    write_result(args.out, outcome)
    print(f"agent runner: {outcome['status']} result written", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
