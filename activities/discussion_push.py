"""Committing the agent's patch to an MR's source branch in the worker, and pushing it safely.

Runs on a fresh clone of the branch at the head the agent worked on. Never force-pushes and only
ever pushes `HEAD:refs/heads/<source branch>`. If the branch moved since the agent started, the
commit is rebased once onto the new tip; when that does not apply cleanly (or the branch moves
again), nothing is pushed and the caller tells the user the branch changed.

The commit carries a trailer naming the note (`Requested-by: <user> (note <id>)`), which is also how
a retried activity recognises that its earlier attempt already pushed (`find_earlier_push`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from activities.git_push import push_head
from core.sanitize import strip_unsafe
from executors.git_repo import GitError, clone, git

MAX_SUBJECT = 72
MAX_BODY = 3000
_REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "failed to push some refs")
_TRAILER = re.compile(r"^Requested-by:.*$", re.MULTILINE)


@dataclass(frozen=True)
class PushOutcome:
    outcome: Literal["pushed", "rebased", "branch_moved"]
    sha: str = ""
    files: tuple[str, ...] = ()


def trailer(author: str, note_id: int) -> str:
    who = re.sub(r"[^\w.@-]", "", author)[:100] or "unknown"
    return f"Requested-by: @{who} (note {note_id})"


def commit_message(commit_type: str, summary: str, author: str, note_id: int) -> str:
    """`<type>: <subject>`, the rest of the summary as body, and the trailer naming the note."""
    text = _TRAILER.sub("", strip_unsafe(summary)).strip()
    first, _, rest = text.partition("\n")
    subject = first.strip().rstrip(".") or "apply the requested change"
    if len(subject) > MAX_SUBJECT - len(commit_type) - 2:
        subject = subject[: MAX_SUBJECT - len(commit_type) - 3].rstrip() + "…"
    body = rest.strip()[:MAX_BODY]
    kind = commit_type if re.fullmatch(r"[a-z]{2,20}", commit_type) else "chore"
    parts = [f"{kind}: {subject}", body, trailer(author, note_id)]
    return "\n\n".join(p for p in parts if p) + "\n"


def find_earlier_push(
    commits: list[dict[str, Any]], note_id: int, author_email: str
) -> dict[str, Any] | None:
    """The agent's commit for `note_id` among an MR's commits (GitLab's commit dicts), if any: its
    trailer names the note and its author is AGENT_AUTHOR_EMAIL (as configured, never a constant)."""
    pattern = re.compile(rf"^Requested-by: .* \(note {note_id}\)$", re.MULTILINE)
    email = author_email.strip().lower()
    for commit in commits:
        if str(commit.get("author_email") or "").lower() == email and pattern.search(
            str(commit.get("message") or "")
        ):
            return commit
    return None


def _rejected(exc: GitError) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _REJECTED) and not exc.transient


def _push(repo: Path, branch: str, token: str | None) -> bool:
    """True when pushed, False when rejected because the branch moved; other errors raise."""
    try:
        push_head(repo, branch, token, "--no-verify")
        return True
    except GitError as exc:
        if _rejected(exc):
            return False
        raise


def commit_and_push(
    *,
    clone_url: str,
    token: str | None,
    work_dir: Path,
    branch: str,
    head_sha: str,
    patch: str,
    message: str,
    author: tuple[str, str],
) -> PushOutcome:
    try:
        repo = clone(
            clone_url, work_dir / "push", token=token, sha=head_sha, branches=[branch], author=author
        )
    except GitError as exc:
        if exc.transient:
            raise
        return PushOutcome("branch_moved")  # the branch or the agent's starting commit is gone
    patch_file = work_dir / "agent.patch"
    patch_file.write_text(patch)
    git(repo, "apply", "--index", "--binary", "--whitespace=nowarn", str(patch_file))
    message_file = work_dir / "message.txt"
    message_file.write_text(message)
    git(repo, "commit", "--quiet", "--no-verify", "-F", str(message_file))
    files = tuple(git(repo, "diff", "--name-only", "HEAD~1", "HEAD").split())[:100]
    if _push(repo, branch, token):
        return PushOutcome("pushed", git(repo, "rev-parse", "HEAD").strip(), files)
    # The branch moved while the agent worked: rebase once onto its new tip.
    git(
        repo,
        "fetch",
        "--quiet",
        "--no-tags",
        "origin",
        f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
        token=token,
    )
    try:
        git(repo, "rebase", "--quiet", f"refs/remotes/origin/{branch}")
    except GitError:
        git(repo, "rebase", "--abort", check=False)
        return PushOutcome("branch_moved", files=files)
    if _push(repo, branch, token):
        return PushOutcome("rebased", git(repo, "rev-parse", "HEAD").strip(), files)
    return PushOutcome("branch_moved", files=files)
