"""The agent's patch as one commit in a clone: ImplementIssue's change and each fix round of its
review loop commit the same way (pushed afterwards with activities/git_push.py::push_head).

The patch file and the message file live in the run's scratch directory, outside the clone, so
neither becomes part of the commit; the message carries the trailers by which a retried activity
recognises its own push (core/implement_commit.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from core import implement_commit as commits
from core.mr_description import evidence_line
from executors.git_repo import git


def commit_patch(
    repo: Path,
    scratch: Path,
    patch: str,
    *,
    name: str,
    title: str,
    summary: str,
    tests: Any,
    issue_key: str,
    workflow_id: str,
    run_id: str,
) -> str:
    """Apply `patch` to `repo`'s index and commit it; the new HEAD's SHA. `name`: the patch file's
    name in `scratch`, kept for the run's record."""
    patch_file = scratch / name
    patch_file.write_text(patch)
    git(repo, "apply", "--index", "--binary", "--whitespace=nowarn", str(patch_file))
    message = commits.commit_message(
        title=title,
        agent_summary=summary,
        tests_line=evidence_line(tests),
        issue_key=issue_key,
        workflow_id=workflow_id,
        run_id=run_id,
    )
    with tempfile.NamedTemporaryFile("w", dir=scratch, suffix=".msg", delete=False) as handle:
        handle.write(message)
    git(repo, "commit", "--quiet", "--no-verify", "-F", handle.name)
    return git(repo, "rev-parse", "HEAD").strip()
