"""`make run`: the service for real, from `.env`, on one machine.

Starts the embedded Temporal dev server (Web UI on 8233, history persisted in .data/temporal.db)
unless TEMPORAL_ADDRESS points at another server, runs `worker.py bootstrap` (search attributes,
polling Schedules), then the worker and the API on port 8000, and stops
all of them on Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from contracts.settings import REPO_ROOT, get_settings
from devenv.temporal_server import TemporalDevServer

API_PORT = int(os.environ.get("API_PORT", "8000"))
LOCAL_ADDRESSES = {"localhost:7233", "127.0.0.1:7233"}


def main() -> int:
    settings = get_settings()  # exits 1 with a table on a bad configuration
    temporal = None
    env = dict(os.environ)
    if settings.temporal_address in LOCAL_ADDRESSES:
        temporal = TemporalDevServer(
            7233,
            ui_port=8233,
            db_file=REPO_ROOT / ".data" / "temporal.db",
            log_file=REPO_ROOT / ".data" / "temporal.log",
        )
        temporal.start()
        env["TEMPORAL_ADDRESS"] = temporal.address
        print(f"Temporal dev server on {temporal.address}, Web UI http://127.0.0.1:8233")
    # Search attributes and the polling Schedules (idempotent), as the Helm hook does in a cluster.
    if subprocess.run([sys.executable, "worker.py", "bootstrap"], cwd=REPO_ROOT, env=env).returncode != 0:
        print("bootstrap failed; see the messages above", file=sys.stderr)
        if temporal:
            temporal.stop()
        return 1
    # Two processes on one host: the API's Prometheus endpoint goes one port above the worker's.
    api_env = dict(env)
    if settings.metrics_port:
        api_env["METRICS_PORT"] = str(settings.metrics_port + 1)
    children = [
        subprocess.Popen([sys.executable, "worker.py"], cwd=REPO_ROOT, env=env),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:create_app",
                "--factory",
                "--host",
                "0.0.0.0",  # noqa: S104
                "--port",
                str(API_PORT),
                "--no-proxy-headers",  # the API reads X-Forwarded-For itself (TRUSTED_PROXIES)
            ],
            cwd=REPO_ROOT,
            env=api_env,
        ),
    ]
    print(f"API on http://127.0.0.1:{API_PORT} (/health, /ready, POST /webhook). Ctrl-C stops everything.")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.3)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=40)
            except subprocess.TimeoutExpired:
                child.kill()
        if temporal:
            temporal.stop()
    failed = [child.returncode for child in children if child.returncode not in (0, -signal.SIGTERM, None)]
    return 1 if failed and not stopping else 0


if __name__ == "__main__":
    sys.exit(main())
