"""The local executor gives every attempt its own directory: an attempt whose heartbeat timed out may
still be cloning while its retry (same run id) starts, and one shared directory let each delete the
other's checkout. Leftovers of a dead worker under the same run id are swept."""

from __future__ import annotations

import subprocess
from pathlib import Path

from contracts.settings import Settings
from executors.local import _ACTIVE, LocalExecutor


def test_two_attempts_of_one_run_get_separate_directories_and_keep_them(tmp_path: Path) -> None:
    executor = LocalExecutor(Settings(_env_file=None, work_dir=str(tmp_path)))
    first = executor._attempt_dir("review:1:2:abc")
    (first / "repo").mkdir()
    second = executor._attempt_dir("review:1:2:abc")  # the retry, while the first still runs
    assert first != second and first.is_dir() and (first / "repo").is_dir() and second.is_dir()
    _ACTIVE.discard(first)
    _ACTIVE.discard(second)


def test_leftovers_of_a_dead_worker_are_swept_those_of_a_live_one_kept(tmp_path: Path) -> None:
    executor = LocalExecutor(Settings(_env_file=None, work_dir=str(tmp_path)))
    probe = executor._attempt_dir("implement:PROJ-1")
    prefix = probe.name.rsplit(".", 2)[0]
    _ACTIVE.discard(probe)
    dead = subprocess.Popen(["true"])
    dead.wait()
    crashed = tmp_path / f"{prefix}.{dead.pid}.1"
    crashed.mkdir()
    live = tmp_path / f"{prefix}.1.1"  # pid 1 is alive: another worker's attempt, not ours to delete
    live.mkdir()
    fresh = executor._attempt_dir("implement:PROJ-1")
    assert not crashed.exists() and not probe.exists()
    assert live.is_dir() and fresh.is_dir()
    _ACTIVE.discard(fresh)
