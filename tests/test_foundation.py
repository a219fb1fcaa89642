"""The skeleton on real servers: a workflow through the real worker wiring, and the API on uvicorn."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx

from api.app import create_app
from contracts.models import DiagnoseResult
from contracts.settings import Settings
from devenv.temporal_server import TemporalDevServer, free_port
from devenv.uvicorn_thread import UvicornThread
from worker import build_worker


async def test_diagnose_runs_through_the_real_worker_wiring(temporal_client, base_settings):
    async with build_worker(temporal_client, base_settings):
        result = await temporal_client.execute_workflow(
            "Diagnose",
            {},
            id=f"diagnose-{uuid.uuid4()}",
            task_queue=base_settings.temporal_task_queue,
            result_type=DiagnoseResult,
        )
    checks = {check.name: check for check in result.checks}
    assert result.task_executor == "local"
    assert checks["git"].ok and checks["git"].detail.startswith("git version")
    assert checks["copilot-cli"].ok, checks["copilot-cli"].detail
    assert not checks["gitlab"].ok and checks["gitlab"].detail == "GITLAB_TOKEN not set"


async def test_health_and_ready_with_temporal_up(base_settings):
    with UvicornThread(create_app(base_settings)) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/health")).json() == {"status": "ok"}
            ready = await http.get("/ready")
    assert ready.status_code == 200 and ready.json()["temporal"] == "ok"


async def test_ready_is_503_while_temporal_is_down_and_200_once_it_is_up(tmp_path):
    port = free_port()
    settings = Settings(_env_file=None, temporal_address=f"127.0.0.1:{port}")
    with UvicornThread(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            assert (await http.get("/health")).status_code == 200
            down = await http.get("/ready")
            assert down.status_code == 503
            assert "temporal unreachable" in down.json()["reason"]
            with TemporalDevServer(port):
                up = await http.get("/ready")
    assert up.status_code == 200


def test_worker_help_says_what_it_does():
    out = subprocess.run([sys.executable, "worker.py", "--help"], capture_output=True, text=True, check=True)
    assert "ReviewMR" in out.stdout and "bootstrap" in out.stdout


def test_invalid_configuration_exits_1_with_a_table():
    env = {"PATH": "/usr/bin:/bin", "REVIEW_MAX_DIFF_LINES": "lots", "JIRA_PROJECT_MAP": "{oops"}
    out = subprocess.run([sys.executable, "worker.py"], capture_output=True, text=True, env=env)
    assert out.returncode == 1
    assert "REVIEW_MAX_DIFF_LINES" in out.stderr and "JIRA_PROJECT_MAP" in out.stderr
    assert "not valid JSON" in out.stderr
