"""Pushing HEAD to a branch, once: a push whose reply was lost is recognised, not redone.

A git push is a compare-and-swap on the ref, so it cannot apply twice; but its reply can be lost
after the remote updated the ref (a proxy's 502, a reset), and curl itself re-sends the POST on a
reused connection that died, which the remote then rejects ("reference already exists", "failed
to lock") although the first one took effect. Either way the push failed as far as git can tell.
So after any failed push the remote branch is read back: at our commit, the push happened.
"""

from __future__ import annotations

import logging
from pathlib import Path

from executors.git_repo import GitError, git

log = logging.getLogger(__name__)


def remote_sha(repo: Path, branch: str, token: str | None) -> str | None:
    listing = git(repo, "ls-remote", "origin", f"refs/heads/{branch}", token=token)
    return listing.split()[0] if listing.strip() else None


def push_head(repo: Path, branch: str, token: str | None, *options: str) -> str:
    """Push HEAD to `branch` (never forced); the pushed SHA. Raises the push's GitError when the
    remote branch is not at HEAD afterwards."""
    head = git(repo, "rev-parse", "HEAD").strip()
    try:
        git(repo, "push", "--quiet", *options, "origin", f"HEAD:refs/heads/{branch}", token=token)
    except GitError as exc:
        try:
            landed = remote_sha(repo, branch, token) == head
        except GitError:
            raise exc from None
        if not landed:
            raise
        log.info("push to %s failed (%s) but the branch is at %s: it took effect", branch, exc, head[:12])
    return head
