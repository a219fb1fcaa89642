"""The init container of an agent Job: clone the task's repository into the shared volume.

`python -m executors.clone_step --dest /workspace/repo`, with the repository reference in CLONE_REPO
(JSON of `RepoRef`; its URL is the worker's Job proxy) and this Job's `git` lease in CLONE_TOKEN.
The GitLab token stays in the worker, which adds it on the way (executors.job_proxy). The lease too
is kept out of the clone: `git_repo.clone` passes it per command as a header, so `.git/config` holds
none, and the check below refuses to hand over a clone that does.

With `--pristine DIR` (implement Jobs) it also makes a second checkout of the target branch there, in
a volume the agent container never mounts: the tree the `tests` container measures the patch on
(executors/job_tests.py).

Exit codes: 0 cloned; 75 (EX_TEMPFAIL) a transient failure worth retrying; 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from executors.git_repo import GitError, clone
from executors.tasks import RepoRef
from executors.test_evidence import prepare_tree

EX_TEMPFAIL = 75


def _leaks(repo: Path, token: str) -> list[str]:
    """Files of the clone's git directory that contain the token (there should be none)."""
    found = []
    for path in (repo / ".git").rglob("*"):
        if path.is_file() and path.stat().st_size < 1024 * 1024 and token.encode() in path.read_bytes():
            found.append(str(path.relative_to(repo)))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m executors.clone_step")
    parser.add_argument("--dest", required=True, type=Path)
    parser.add_argument("--pristine", type=Path, default=None)
    args = parser.parse_args(argv)
    token = os.environ.pop("CLONE_TOKEN", "") or None
    try:
        ref = RepoRef.model_validate_json(os.environ.get("CLONE_REPO", ""))
    except ValidationError as exc:
        print(f"clone step: CLONE_REPO is not a valid repository reference ({exc.error_count()} errors)")
        return 1
    try:
        clone(ref.clone_url, args.dest, token=token, sha=ref.head_sha, branches=ref.branches)
    except GitError as exc:  # its message is already scrubbed of the token
        print(f"clone step: {exc}")
        return EX_TEMPFAIL if exc.transient else 1
    leaks = _leaks(args.dest, token) if token and len(token) >= 4 else []
    if leaks:
        print(f"clone step: refusing the clone, the token was written to {', '.join(leaks)}")
        return 1
    if args.pristine is not None:
        try:
            prepare_tree(args.dest, args.pristine, ref.head_sha)
        except GitError as exc:
            print(f"clone step: the checkout for the tests failed: {exc}")
            return 1
    print(f"clone step: {ref.head_sha[:12]} checked out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
