"""Choosing what the reviewer sees: incremental or full, minus excluded files, within a line budget.

Computed with git inside the sandbox's clone, so a large diff never leaves it. Every file that is
not shown to the agent is returned with the reason, for the summary note: never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.repo_instructions import path_matches
from executors.git_repo import git, has_commit, is_ancestor
from executors.tasks import ReviewScope, SkippedFile


@dataclass
class SelectedDiff:
    scope: ReviewScope
    text: str = ""
    changed_paths: list[str] = field(default_factory=list)  # every path of the MR, for instructions
    from_sha: str = ""


def _changed(repo: Path, base: str, head: str) -> list[tuple[str, str | None, int | None]]:
    """(path, old path if renamed, changed lines or None for binary) per file between base and head."""
    out = git(repo, "diff", "--numstat", "-z", "--find-renames", base, head)
    fields = out.split("\0")
    files: list[tuple[str, str | None, int | None]] = []
    i = 0
    while i < len(fields) - 1:
        stat = fields[i]
        if not stat:
            i += 1
            continue
        added, deleted, path = stat.split("\t", 2)
        old = None
        if path == "":  # rename: -z puts old and new names in the next two fields
            old, path = fields[i + 1], fields[i + 2]
            i += 3
        else:
            i += 1
        lines = None if added == "-" else int(added) + int(deleted)
        files.append((path, old, lines))
    return files


def select_review_diff(
    repo: Path, *, base_sha: str, head_sha: str, since_sha: str | None, exclude: list[str], max_lines: int
) -> SelectedDiff:
    mode, from_sha, full_reason = "full", base_sha, ""
    if since_sha:
        if since_sha == head_sha:
            return SelectedDiff(ReviewScope(mode="nothing"), from_sha=head_sha)
        if has_commit(repo, since_sha) and is_ancestor(repo, since_sha, head_sha):
            mode, from_sha = "incremental", since_sha
        else:
            full_reason = (
                f"the last reviewed commit {since_sha[:8]} is no longer part of the branch "
                "(force-push or rebase), so this is a full review"
            )

    all_changes = _changed(repo, base_sha, head_sha)
    changes = all_changes if mode == "full" else _changed(repo, from_sha, head_sha)
    reviewed: list[str] = []
    skipped: list[SkippedFile] = []
    parts: list[str] = []
    budget = max_lines
    for path, old, lines in changes:
        pattern = next((p for p in exclude if path_matches(p, path)), None)
        if pattern:
            skipped.append(SkippedFile(path=path, reason=f"excluded by REVIEW_EXCLUDE ({pattern})"))
            continue
        if lines is None:
            skipped.append(SkippedFile(path=path, reason="binary file"))
            continue
        if lines > budget:
            skipped.append(
                SkippedFile(
                    path=path,
                    reason=f"over the review budget ({lines} changed lines, {budget} left "
                    f"of REVIEW_MAX_DIFF_LINES={max_lines})",
                )
            )
            continue
        paths = [old, path] if old else [path]
        parts.append(git(repo, "diff", "--find-renames", "--no-color", from_sha, head_sha, "--", *paths))
        reviewed.append(path)
        budget -= lines
    scope = ReviewScope(
        mode=mode,  # type: ignore[arg-type]
        reviewed_files=reviewed,
        skipped=skipped,
        full_reason=full_reason,
        diff_lines=max_lines - budget,
    )
    return SelectedDiff(scope, "".join(parts), [p for p, _, _ in all_changes], from_sha)
