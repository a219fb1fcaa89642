"""Fixtures for runs of the real Copilot CLI against the scripted model server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.settings import Settings
from executors.copilot_cli import CopilotRun
from executors.process_sandbox import ProcessSandbox
from standins.model_server import ModelServer, ScriptedBrain

SETTINGS = Settings(_env_file=None)
PROVIDER_KEY = "sk-test-provider-key-0123456789"


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    with ModelServer(ScriptedBrain(), api_key=PROVIDER_KEY) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "app.py").write_text("def handler(data):\n    return eval(data)\n")
    return clone


@pytest.fixture
def make_run(
    model_server: ModelServer, workdir: Path, process_sandbox: ProcessSandbox
) -> Callable[..., CopilotRun]:
    def make(prompt: str, kind: str = "review", **overrides: Any) -> CopilotRun:
        values: dict[str, Any] = {
            "workdir": workdir,
            "executable": SETTINGS.copilot_executable,
            "cache_dir": SETTINGS.copilot_cache_path,
            "model": "scripted",
            "provider_base_url": model_server.base_url,
            "provider_api_key": PROVIDER_KEY,
            "timeout_s": 60,
            "sandbox": process_sandbox,
        }
        values.update(overrides)
        return CopilotRun(prompt=prompt, kind=kind, **values)

    return make
