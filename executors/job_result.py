"""The `result` container of an agent Job: `python -m executors.job_result --in /result/result.json`.

It starts only after the agent container has ended (the agent is the last init container; this is
the pod's only app container), runs as another uid with the `result` volume mounted read-only, and
holds the Job's result key in JOB_RESULT_KEY (k8s_spec puts it nowhere else). It reads the agent's
result file (executors.k8s_channel.read_result_file: bounded, no symlinks) and prints exactly one
signed frame: the result, or an error frame saying why there is none. Its log is the one channel the
worker trusts; no agent process exists any more to write to it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from executors.k8s_channel import (
    MAX_RESULT_BYTES,
    ChannelError,
    error_payload,
    read_result_file,
    signed_frame,
)

KEY_ENV = "JOB_RESULT_KEY"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executors.job_result")
    parser.add_argument("--in", dest="source", required=True, type=Path)
    args = parser.parse_args(argv)
    key = os.environ.pop(KEY_ENV, "")
    if len(key) < 32:
        print(f"result container: {KEY_ENV} is missing", file=sys.stderr)
        return 1
    try:
        status, payload = read_result_file(args.source)
        if len(payload) > MAX_RESULT_BYTES:
            raise ChannelError(f"the agent's result is over the {MAX_RESULT_BYTES}-byte cap")
    except ChannelError as exc:
        outcome = error_payload("AgentNoResult", str(exc))
        status, payload = outcome["status"], json.dumps(outcome["payload"]).encode()
    sys.stdout.write(signed_frame(status, payload, key))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
