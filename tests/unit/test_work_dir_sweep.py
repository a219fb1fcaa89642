"""The worker's start-up sweep of WORK_DIR (seed parity 3.1.14): real directories, real mtimes."""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from pathlib import Path

from executors.work_dir import is_run_dir_name, sweep_stale_run_dirs
from worker import RUN_DIR_MAX_AGE

HOUR = 3600.0


def make(path: Path, age_s: float, files: dict[str, str] | None = None) -> Path:
    """A directory with entries, everything last touched `age_s` ago."""
    path.mkdir(parents=True)
    stamp = time.time() - age_s
    for name, text in (files or {"repo/README.md": "x"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    for root, dirs, names in os.walk(path, topdown=False):
        for name in [*dirs, *names]:
            os.utime(Path(root) / name, (stamp, stamp), follow_symlinks=False)
    os.utime(path, (stamp, stamp))
    return path


def test_only_old_run_directories_of_this_service_are_removed(tmp_path: Path, caplog) -> None:
    work = tmp_path / "work"
    old_attempt = make(work / "review-42-7-abc-0123456789.4711.1", 3 * HOUR)
    old_push = make(work / "push-implement-proj-1-0123456789", 3 * HOUR)
    old_fix = make(work / "fix-implement-proj-1-abcdef0123", 3 * HOUR)
    running = make(work / "review-43-1-def-0123456789.4712.1", 3 * HOUR)
    (running / "repo" / "new-file").write_text("a live run touched it a minute ago")
    young = make(work / "push-discussion-9-fedcba9876", 10 * 60)
    foreign = make(work / "my-notes", 3 * HOUR)  # not a name this service makes
    almost = make(work / "push-x-0123456789.bak", 3 * HOUR)
    outside = make(tmp_path / "elsewhere-0123456789.1.1", 3 * HOUR)
    link = work / "review-1-1-aaa-0123456789.1.1"
    link.symlink_to(outside, target_is_directory=True)  # named like ours: never followed

    with caplog.at_level(logging.INFO, logger="executors.work_dir"):
        removed = sweep_stale_run_dirs(work, RUN_DIR_MAX_AGE)

    assert sorted(removed) == sorted(p.name for p in (old_attempt, old_push, old_fix))
    for gone in (old_attempt, old_push, old_fix):
        assert not gone.exists()
    for kept in (running, young, foreign, almost, link):
        assert kept.exists() or kept.is_symlink()
    assert (outside / "repo" / "README.md").exists()  # what the link points to is untouched
    (line,) = [r.getMessage() for r in caplog.records if "stale run directories" in r.getMessage()]
    assert line.startswith("removed 3 stale run directories") and old_push.name in line


def test_a_run_directory_holding_a_symlink_out_is_removed_without_following_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    precious = make(tmp_path / "precious", 0, {"keep.txt": "mine"})
    stale = make(work / "push-wf-0123456789", 3 * HOUR)
    (stale / "repo" / "out").symlink_to(precious, target_is_directory=True)
    os.utime(stale / "repo" / "out", (time.time() - 3 * HOUR,) * 2, follow_symlinks=False)
    os.utime(stale / "repo", (time.time() - 3 * HOUR,) * 2)
    os.utime(stale, (time.time() - 3 * HOUR,) * 2)
    assert sweep_stale_run_dirs(work, timedelta(hours=1)) == [stale.name]
    assert (precious / "keep.txt").read_text() == "mine"


def test_no_work_dir_or_a_symlinked_one_is_left_alone(tmp_path: Path) -> None:
    assert sweep_stale_run_dirs(tmp_path / "missing", RUN_DIR_MAX_AGE) == []
    real = tmp_path / "real"
    make(real / "push-wf-0123456789", 3 * HOUR)
    (tmp_path / "linked").symlink_to(real, target_is_directory=True)
    assert sweep_stale_run_dirs(tmp_path / "linked", RUN_DIR_MAX_AGE) == []
    assert (real / "push-wf-0123456789").exists()


def test_the_names_match_the_directories_the_service_makes(tmp_path: Path) -> None:
    # The names the local executor and the activities build (executors/local.py, activities/*.py).
    from contracts.settings import Settings
    from executors.local import LocalExecutor

    executor = LocalExecutor(Settings(_env_file=None, work_dir=str(tmp_path)))
    attempt = executor._attempt_dir("review:1234:56:" + "a" * 40 + "-run_review")
    assert is_run_dir_name(attempt.name)
    assert not is_run_dir_name("notes") and not is_run_dir_name("push-") and not is_run_dir_name(".git")
    assert RUN_DIR_MAX_AGE >= timedelta(minutes=60)  # longer than the longest agent activity
