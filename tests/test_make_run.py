"""`make run` (devenv.run) with the example .env and no GitLab reachable: Temporal with its Web UI on
8233, the worker and the API on 8000 come up; /health and /ready answer 200; Ctrl-C stops all three."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from contracts.settings import REPO_ROOT


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _wait_free(ports: tuple[int, ...], seconds: float) -> bool:
    # Checked when the test runs, not at collection: `make demo`'s test may have just released them.
    deadline = time.monotonic() + seconds
    while not all(_free(p) for p in ports):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_make_run_starts_everything_and_stops_on_ctrl_c(tmp_path):
    if not _wait_free((7233, 8233, 8000), 20):
        pytest.skip("ports 7233/8233/8000 are in use")
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    shutil.copy(REPO_ROOT / ".env.example", workdir / ".env")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "PYTHONPATH": str(REPO_ROOT)}
    # A file, not a pipe: nobody reads a pipe until the end, and a full pipe would block the
    # service's logging (and with it the service).
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "devenv.run"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    checks: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get("http://127.0.0.1:8000/ready", timeout=1).status_code == 200:
                    checks["health"] = httpx.get("http://127.0.0.1:8000/health").status_code
                    checks["ready"] = 200
                    checks["ui"] = httpx.get("http://127.0.0.1:8233/", timeout=5).status_code
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
        log.close()
        output = (tmp_path / "run.log").read_text(errors="replace")
    assert checks == {"health": 200, "ready": 200, "ui": 200}, output[-3000:]
    assert process.returncode == 0, output[-2000:]
    assert "Ctrl-C stops everything" in output
    assert all(_free(p) for p in (7233, 8233, 8000))
