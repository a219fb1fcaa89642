"""What the commits since the last review changed: which lines they touched, and where a finding's
anchor moved. Pure; reads GitLab's compare diffs (`repository/compare?from=<last>&to=<head>&straight=true`,
the two trees, so it holds after a force-push too), parsed like the MR diff (core/diff_positions.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.diff_positions import DiffParseError, FileDiff, parse_file_diff


@dataclass(frozen=True)
class Moved:
    """Where an anchor is after the commits: `file` None when the code is gone."""

    file: str | None
    line: int
    end_line: int | None
    touched: bool  # the code at the anchor changed
    gone: bool  # the file was deleted, or the anchor's lines removed with nothing in their place


@dataclass
class TreeDiff:
    files: dict[str, FileDiff] = field(default_factory=dict)  # by old path
    by_new: dict[str, FileDiff] = field(default_factory=dict)  # by new path
    unreadable: set[str] = field(default_factory=set)  # too large or binary: wholly touched

    @classmethod
    def from_compare(cls, diffs: Iterable[Mapping[str, Any]]) -> TreeDiff:
        tree = cls()
        for change in diffs:
            old, new = str(change.get("old_path") or ""), str(change.get("new_path") or "")
            try:
                parsed = parse_file_diff(change)
            except (DiffParseError, ValueError, KeyError):
                tree.unreadable |= {old, new}
                continue
            if parsed.binary or parsed.too_large:
                tree.unreadable |= {old, new}
            tree.files[parsed.old_path] = parsed
            tree.by_new[parsed.new_path] = parsed
        return tree

    def touched(self, file: str, line: int, end_line: int | None = None, side: str = "new") -> bool:
        """Whether a finding on `file` lines line..end_line (of the head, or of the old tree for
        side "old") is on code these commits added or removed."""
        end = end_line or line
        if file in self.unreadable:
            return True
        if side == "old":
            target = self.files.get(file)
            return target is not None and any(
                d.kind == "removed" and d.old_line is not None and line <= d.old_line <= end
                for d in target.lines
            )
        target = self.by_new.get(file)
        if target is None:
            return False
        if target.new_file:
            return True
        return any(
            d.kind == "added" and d.new_line is not None and line <= d.new_line <= end for d in target.lines
        )

    def move(self, file: str, line: int, end_line: int | None = None) -> Moved:
        """Follow an anchor on the old tree to the new one."""
        end = end_line or line
        if file in self.unreadable:
            return Moved(file, line, end_line, touched=True, gone=False)
        target = self.files.get(file)
        if target is None:
            return Moved(file, line, end_line, touched=False, gone=False)
        if target.deleted_file:
            return Moved(None, line, end_line, touched=True, gone=True)
        new_path = target.new_path
        removed = [
            d for d in target.lines if d.kind == "removed" and d.old_line and line <= d.old_line <= end
        ]
        # Added lines inside the range: after a kept line of the range, before the range's last line.
        kept = [d for d in target.lines if d.kind == "context" and d.old_line and line <= d.old_line <= end]
        added_inside = _added_within(target, line, end)
        touched = bool(removed) or added_inside
        if removed and not kept and not _replaced(target, removed):
            return Moved(None, line, end_line, touched=True, gone=True)
        new_line = _new_number(target, line)
        new_end = _new_number(target, end) if end_line else None
        if new_end is not None and new_end < new_line:
            new_end = None
        return Moved(new_path, new_line, new_end, touched=touched, gone=False)


def _added_within(target: FileDiff, start: int, end: int) -> bool:
    if start == end:
        return False
    inside = False
    for d in target.lines:
        if d.old_line is not None:
            inside = start <= d.old_line < end
        elif d.kind == "added" and inside:
            return True
    return False


def _replaced(target: FileDiff, removed: list) -> bool:
    """Whether the hunk that removed the anchor's lines added others (a rewrite, not a deletion)."""
    hunks = {d.hunk for d in removed}
    return any(d.kind == "added" and d.hunk in hunks for d in target.lines)


def _new_number(target: FileDiff, old_line: int) -> int:
    """The new-tree line of an old-tree line: exact for lines in the diff, shifted by the hunks
    above it otherwise; a removed line maps to where its replacement (or the next line) starts."""
    shift = 0
    for hunk in target.hunks:
        if hunk.old_start + hunk.old_count <= old_line:
            shift = (hunk.new_start + hunk.new_count) - (hunk.old_start + hunk.old_count)
    pending = False
    for index, d in enumerate(target.lines):
        if d.old_line == old_line:
            if d.new_line is not None:
                return d.new_line
            pending = True
        elif pending and d.new_line is not None:
            return d.new_line
        if pending and index == len(target.lines) - 1:
            break
    return max(1, old_line + shift)
