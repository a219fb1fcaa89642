"""Session-wide real servers: a Temporal dev server started here and stopped at the end.

The suite runs in parallel processes (pytest-xdist, `-n auto` in pyproject.toml): a "session" is one
worker's, so each worker starts its own Temporal dev server, model server and stand-ins on ports of
its own (port 0). Tests must not rely on order, fixed ports or shared paths outside tmp_path; the few
files that must run one after another on one worker (fixed ports, an expensive module fixture) are
in SERIAL_GROUPS below. `-n 0` (or `-p no:xdist`) runs serially.
"""

from __future__ import annotations

import os
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

# Workers per CPU for `-n auto` (at least 2). Two per core kept both cores busier, but on a 2-core
# machine the timing-sensitive tests (the 503-within-2-s answer, the Kubernetes executor's cancel and
# forged-frame tests) then failed in a fresh-clone run with nothing else running (4 workers: 15 min,
# 3 timing failures); one per core is the safer default until those tests wait on events, not clocks.
# (2026-12-02, fresh clones on an idle 2-core machine: 2 workers 7 m 10 s, 3 workers 5 m 50 s and
# 4 workers 5 m 55 s, all green once the Kubernetes watcher attack stopped reaching other tests' pods;
# CI machines have been up to 1.8x slower, so the default stays at one per core. `-n 3` is safe here.)
WORKERS_PER_CPU = 1
MAX_WORKERS = 8


# Longest first (collection order is the order xdist hands tests out): the suite's tail is its few
# long tests, so they start at once instead of last. The order of everything else is unchanged.
LONG_FIRST = (
    "tests/reliability/",
    "tests/test_demo.py",
    "tests/test_make_run.py",
    "tests/flows/test_kubernetes_executor.py",
    "tests/flows/test_review_failures.py",
    "tests/test_manual_starts.py",
    "tests/flows/",
)


# Files whose tests run on one worker, one after another: a group name per file. Not `xdist_group`
# marks with `--dist loadgroup`: with pytest 9.2 xdist silently stops grouping by them
# (pytest-dev/pytest-xdist#1386), so the scheduler below groups by these paths itself.
SERIAL_GROUPS = {
    # Temporal's and the API's default ports (7233, 8233, 8000): `make run` needs them free, and the
    # demo prefers them.
    "tests/test_demo.py": "default-ports",
    "tests/test_make_run.py": "default-ports",
    # The module's `world` fixture runs three flows; once per worker it would run up to four times.
    "tests/reliability/test_prompt_injection.py": "prompt-injection-world",
}


def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN201 - xdist's hook
    from xdist.scheduler import LoadScopeScheduling

    class GroupedLoad(LoadScopeScheduling):
        """`--dist load` (one test at a time to whichever worker is free), except SERIAL_GROUPS."""

        def _split_scope(self, nodeid: str) -> str:
            return SERIAL_GROUPS.get(nodeid.split("::", 1)[0], nodeid)

    return GroupedLoad(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid
        return next((n for n, prefix in enumerate(LONG_FIRST) if path.startswith(prefix)), len(LONG_FIRST))

    items.sort(key=rank)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):  # xdist's own override, kept working
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(2, min(MAX_WORKERS, WORKERS_PER_CPU * cpus))


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
