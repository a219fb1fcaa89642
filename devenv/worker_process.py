"""The worker (and the API) as real child processes (`python worker.py`), for tests that kill it (SIGKILL) and
start it again, as a crash of a production worker would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
from pydantic import SecretStr

from contracts.project_map import ProjectMap
from contracts.settings import CREDENTIAL_PREFIX, REPO_ROOT, Settings
from core import markers


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that make a child process load exactly `settings`."""
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if name == "gitlab_tokens":  # one GITLAB_TOKEN__<ALIAS> per credential
            env.update(
                {f"{CREDENTIAL_PREFIX}{alias.upper()}": t.get_secret_value() for alias, t in value.items()}
            )
            continue
        if isinstance(value, ProjectMap):
            value = json.dumps(value.render())
        elif isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, dict):
            value = json.dumps(
                {k: v.model_dump() if hasattr(v, "model_dump") else v for k, v in value.items()}
            )
        env[name.upper()] = str(getattr(value, "value", value))
    return env


class WorkerProcess:
    def __init__(
        self, settings: Settings, *, log_file: Path | None = None, extra_env: dict[str, str] | None = None
    ) -> None:
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            **settings_env(settings),
            **(extra_env or {}),
        }
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        # This process reads what the worker writes (tests, the demo): it verifies the worker's
        # signed markers with the same keys (core/markers.py), never signing for it.
        secret = settings.marker_key.get_secret_value() if settings.marker_key else ""
        token = settings.gitlab_token.get_secret_value() if settings.gitlab_token else ""
        if keys := markers.keys_from(secret, token):
            markers.use_keys(keys)

    def start(self) -> WorkerProcess:
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1
        return self

    def kill(self) -> None:
        """SIGKILL the worker and everything it started (a crash, not a shutdown)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM: the graceful path (drain, then exit)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def start_api_process(
    settings: Settings,
    port: int,
    *,
    log: IO[bytes] | None = None,
    quiet: bool = False,
    app: str = "api.app:create_app",
) -> subprocess.Popen[bytes]:
    """The API (or another app factory, e.g. the bench's baseline) as its own uvicorn process (as in
    production), loaded with `settings`; returns once `/ready` answers 200 (Temporal reachable), or
    kills it and raises."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        **settings_env(settings),
    }
    # --no-proxy-headers: as deployed; the API reads X-Forwarded-For itself (api/ingress.py).
    cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--port", str(port), "--no-proxy-headers"]
    if quiet:
        cmd += ["--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT if log else None
    )
    deadline = time.monotonic() + 60  # importing the app takes seconds on a loaded 2-core machine
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the API did not become ready")
