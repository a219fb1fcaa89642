"""The worker's start-up sweep of WORK_DIR: per-run directories a killed run left behind.

Every per-run directory is removed by the run itself (`finally`) or by its retry, but a worker killed
mid-run (SIGKILL, OOM, a host reboot under `make run`) leaves its clone behind, and nobody else
would ever remove it. At start the worker removes what matches all of these:

- a directory (not a symlink, never followed) directly in WORK_DIR;
- named as this service names its run directories (`RUN_DIR_NAMES`: the local executor's attempt
  directories and the push/fix checkouts of the activities); anything else in WORK_DIR is left alone,
  so a WORK_DIR shared with other files loses nothing;
- untouched (the directory and its entries) for longer than a run can live, so a run of another worker
  process sharing the directory is never swept from under it.

What was removed is logged (one line, the names and the count).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from datetime import timedelta
from pathlib import Path

log = logging.getLogger(__name__)

# executors/local.py `<run>-<sha10>.<pid>.<attempt>`; activities/implement.py and discussion.py
# `push-<workflow>-<sha10>`; activities/review_loop.py `fix-<workflow>-<sha10>`.
RUN_DIR_NAMES = (
    re.compile(r"^[a-z0-9-]{1,40}-[0-9a-f]{10}\.[0-9]+\.[0-9]+$"),
    re.compile(r"^(push|fix)-[a-z0-9-]{0,40}-[0-9a-f]{10}$"),
)
MAX_LOGGED = 20


def is_run_dir_name(name: str) -> bool:
    return any(pattern.match(name) for pattern in RUN_DIR_NAMES)


def _last_touched(path: Path) -> float:
    """The newest mtime of the directory and its direct entries (lstat: links are not followed)."""
    newest = os.lstat(path).st_mtime
    with os.scandir(path) as entries:
        for entry in entries:
            try:
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
            except OSError:
                continue
    return newest


def sweep_stale_run_dirs(work_dir: Path, older_than: timedelta, *, now: float | None = None) -> list[str]:
    """Remove the stale per-run directories of `work_dir`; returns their names."""
    if not work_dir.is_dir() or work_dir.is_symlink():
        return []
    cutoff = (time.time() if now is None else now) - older_than.total_seconds()
    removed: list[str] = []
    with os.scandir(work_dir) as entries:
        candidates = [e for e in entries if e.is_dir(follow_symlinks=False) and is_run_dir_name(e.name)]
    for entry in candidates:
        path = Path(entry.path)
        try:
            if _last_touched(path) >= cutoff:
                continue
            shutil.rmtree(path)  # fd-based on Linux: does not follow symlinks inside the tree
        except OSError as exc:
            log.warning("could not remove stale run directory %s: %s", path, exc.strerror or exc)
            continue
        removed.append(entry.name)
    if removed:
        shown = ", ".join(sorted(removed)[:MAX_LOGGED]) + (" ..." if len(removed) > MAX_LOGGED else "")
        log.info(
            "removed %d stale run directories from WORK_DIR %s (untouched for over %s): %s",
            len(removed),
            work_dir,
            older_than,
            shown,
        )
    return removed
