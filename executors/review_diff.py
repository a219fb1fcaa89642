"""Choosing what the reviewer sees: incremental or full, minus excluded files, within a line budget.

Computed with git inside the sandbox's clone, so a large diff never leaves it. Every file that is
not shown to the agent is returned with the reason, for the summary note: never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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


_HUNK_START = re.compile(r"^@@ ", re.MULTILINE)


def first_part(diff: str, budget: int) -> tuple[str, int]:
    """The file's diff cut to whole hunks within `budget` changed lines (the first hunk cut short
    when even it is over), and how many changed lines that shows."""
    starts = [m.start() for m in _HUNK_START.finditer(diff)]
    if not starts:
        return diff, 0
    header, hunks = (
        diff[: starts[0]],
        [diff[a:b] for a, b in zip(starts, [*starts[1:], len(diff)], strict=True)],
    )
    kept: list[str] = []
    shown = 0
    for hunk in hunks:
        changed = sum(1 for line in hunk.splitlines()[1:] if line[:1] in "+-")
        if shown + changed <= budget:
            kept.append(hunk)
            shown += changed
            continue
        if not kept:  # the first hunk alone is over: its first `budget` changed lines
            lines, count = [], 0
            for line in hunk.splitlines(keepends=True):
                if line[:1] in "+-":
                    if count == budget:
                        break
                    count += 1
                lines.append(line)
            kept.append("".join(lines))
            shown = count
        break
    return header + "".join(kept), shown


_FILE_START = re.compile(r"^diff --git ", re.MULTILINE)


def _diffs(repo: Path, from_sha: str, head_sha: str, files: list[list[str]]) -> list[str]:
    """Each file's diff (its paths: [old, new] for a rename), from one `git diff` for all of them:
    a subprocess per file cost about 5 ms each, the better part of a second for a bundle. git
    writes the files in the order `--numstat` listed them; if the split does not give one part
    per file, each is asked for on its own."""
    if not files:
        return []
    if len(files) > 1:
        paths = [p for group in files for p in group]
        out = git(repo, "diff", "--find-renames", "--no-color", from_sha, head_sha, "--", *paths)
        starts = [m.start() for m in _FILE_START.finditer(out)]
        if len(starts) == len(files):
            return [out[a:b] for a, b in zip(starts, [*starts[1:], len(out)], strict=True)]
    return [
        git(repo, "diff", "--find-renames", "--no-color", from_sha, head_sha, "--", *group) for group in files
    ]


def select_review_diff(
    repo: Path,
    *,
    base_sha: str,
    head_sha: str,
    since_sha: str | None,
    exclude: list[str],
    max_lines: int,
    only: Sequence[str] = (),
) -> SelectedDiff:
    """`only`: the paths of one bundle of a large review; the other files are reviewed in other
    runs. A bundle's one file over the budget is shown in part (first hunks) rather than skipped."""
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
    if only:
        wanted = set(only)
        changes = [c for c in changes if c[0] in wanted]
    reviewed: list[str] = []
    skipped: list[SkippedFile] = []
    partial: list[SkippedFile] = []
    parts: list[str] = []
    whole: list[tuple[int, list[str]]] = []  # (index in parts, paths) of the files shown whole
    budget = max_lines
    for path, old, lines in changes:
        pattern = next((p for p in exclude if path_matches(p, path)), None)
        if pattern:
            skipped.append(SkippedFile(path=path, reason=f"excluded by REVIEW_EXCLUDE ({pattern})"))
            continue
        if lines is None:
            skipped.append(SkippedFile(path=path, reason="binary file"))
            continue
        if lines > budget and only and not reviewed and not partial:
            paths = [old, path] if old else [path]
            text = git(repo, "diff", "--find-renames", "--no-color", from_sha, head_sha, "--", *paths)
            text, shown = first_part(text, budget)
            parts.append(text)
            partial.append(
                SkippedFile(
                    path=path,
                    reason=f"the first {shown} of its {lines} changed lines were reviewed (one run takes "
                    f"REVIEW_MAX_DIFF_LINES={max_lines}); the rest was not",
                )
            )
            budget -= shown
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
        whole.append((len(parts), [old, path] if old else [path]))
        parts.append("")  # filled below, from one `git diff` of every file shown whole
        reviewed.append(path)
        budget -= lines
    for (index, _), text in zip(whole, _diffs(repo, from_sha, head_sha, [p for _, p in whole]), strict=True):
        parts[index] = text
    scope = ReviewScope(
        mode=mode,  # type: ignore[arg-type]
        reviewed_files=reviewed,
        skipped=skipped,
        partial=partial,
        full_reason=full_reason,
        diff_lines=max_lines - budget,
    )
    return SelectedDiff(scope, "".join(parts), [p for p, _, _ in all_changes], from_sha)
