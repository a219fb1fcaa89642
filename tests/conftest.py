"""Session-wide real servers: a Temporal dev server started here and stopped at the end."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

from contracts import temporal
from contracts.settings import Settings
from core import markers
from devenv.temporal_server import TemporalDevServer

# Tests sign markers with a test key (also at collection, for parametrized bodies); a worker built
# for a flow test adds its own key, and this process verifies with both.
markers.use_keys([markers.derive_key("tests")])


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[TemporalDevServer]:
    with TemporalDevServer() as server:
        yield server


@pytest.fixture
def task_queue() -> str:
    """A task queue of its own per test, so workers of different tests never steal each other's work."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def base_settings(temporal_server: TemporalDevServer, task_queue: str, tmp_path) -> Settings:
    return Settings(
        _env_file=None,
        temporal_address=temporal_server.address,
        temporal_task_queue=task_queue,
        gitlab_webhook_secret="test-webhook-secret",
        work_dir=str(tmp_path / "work"),
    )


@pytest.fixture(scope="session")
async def temporal_client(temporal_server: TemporalDevServer) -> AsyncIterator[Client]:
    yield await temporal.connect(Settings(_env_file=None, temporal_address=temporal_server.address))


@pytest.fixture(scope="session")
def process_sandbox():
    """The local executor's sandbox (bubblewrap), for tests that start agent-side processes."""
    from executors.process_sandbox import ProcessSandbox

    return ProcessSandbox.from_settings(Settings(_env_file=None))
