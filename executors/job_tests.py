"""The `tests` container of an implement Job: `python -m executors.job_tests --tree /pristine/repo
--in /result/result.json --out /evidence/result.json`.

It starts after the agent container has ended (init containers run one after the other) and holds
no lease, no key and no model address. `--tree` is the checkout of the target branch the clone
container made before the agent started, in a volume the agent container never mounts. It reads the
agent's result (bounded, no symlinks: executors.k8s_channel.read_result_file), takes its patch as
data (the very patch the worker will push), and measures it as the local executor does
(executors.test_evidence.measure): the patch applied with this container's git to that checkout,
every harness file reset to the target branch's version, the test command the configured one
(TESTS_COMMAND) or the one discovered on the target branch. The agent's own `tests` field is
replaced by that evidence, and the whole result written to `--out`, a volume only this container
writes and only the signing `result` container reads. Exit 0 either way, so `result` signs what it
finds (an error result when there is nothing to measure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from executors.k8s_channel import (
    ChannelError,
    ResultTooLarge,
    error_payload,
    read_result_file,
    result_payload,
    write_result,
)
from executors.process_sandbox import JobContainer
from executors.tasks import AgentResult
from executors.test_evidence import discover, measure

COMMAND_ENV = "TESTS_COMMAND"
BASE_SHA_ENV = "TESTS_BASE_SHA"
BASE_NAME_ENV = "TESTS_BASE_NAME"


def _outcome(tree: Path, source: Path) -> dict[str, Any]:
    try:
        status, raw = read_result_file(source)
    except ChannelError as exc:
        return error_payload("AgentNoResult", str(exc))
    payload = json.loads(raw)
    if status != "ok":
        return {"status": status, "payload": payload}
    try:
        result = AgentResult.model_validate(payload)
    except ValidationError as exc:
        return error_payload(
            "AgentNoResult", f"the agent's result is not a result ({exc.error_count()} errors)"
        )
    tests = None
    if result.kind == "implement" and result.patch:
        base_sha = os.environ.get(BASE_SHA_ENV, "")
        command, how = discover(tree, os.environ.get(COMMAND_ENV) or None)  # the target branch's tree
        try:
            tests = asyncio.run(
                measure(
                    JobContainer(),
                    tree,
                    result.patch,
                    command,
                    how,
                    base_sha=base_sha,
                    base_name=os.environ.get(BASE_NAME_ENV) or base_sha[:12],
                )
            )
        except Exception as exc:  # e.g. a patch that does not apply: a clear error, not a traceback
            return error_payload(type(exc).__name__, f"measuring the tests failed: {exc}"[:4000])
    try:
        return result_payload(result.model_copy(update={"tests": tests}))
    except ResultTooLarge as exc:
        return error_payload("ResultTooLarge", str(exc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executors.job_tests")
    parser.add_argument("--tree", required=True, type=Path)
    parser.add_argument("--in", dest="source", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    outcome = _outcome(args.tree, args.source)
    write_result(args.out, outcome)
    tests = outcome["payload"].get("tests") if outcome["status"] == "ok" else None
    summary = f"exit {tests['exit_code']}, {tests['command']!r}" if tests else "no tests measured"
    print(f"tests step: {outcome['status']} result written ({summary})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
