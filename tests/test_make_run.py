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


@pytest.mark.skipif(not all(_free(p) for p in (7233, 8233, 8000)), reason="ports 7233/8233/8000 are in use")
def test_make_run_starts_everything_and_stops_on_ctrl_c(tmp_path):
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    shutil.copy(REPO_ROOT / ".env.example", workdir / ".env")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "devenv.run"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get("http://127.0.0.1:8000/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert httpx.get("http://127.0.0.1:8000/health").json() == {"status": "ok"}
        assert httpx.get("http://127.0.0.1:8000/ready").status_code == 200
        assert httpx.get("http://127.0.0.1:8233/", timeout=5).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode(errors="replace")
    assert process.returncode == 0, output[-2000:]
    assert "Ctrl-C stops everything" in output
    assert all(_free(p) for p in (7233, 8233, 8000))
