"""Where a review finding's comment goes on a GitLab merge request diff.

GitLab accepts an inline thread only when its `position` names a line that exists in the MR's diff
version, with exactly the fields GitLab derives for that line; anything else is the 400
`line_code can't be blank`. This module parses each file's unified diff the way GitLab's own
`Gitlab::Diff::Parser` does (running old/new counters, `\\ No newline` lines counted as nothing) and
maps a finding's `file:line` to that position, or says why it cannot, so the caller posts a general
note naming `file:line` instead of dropping the finding or moving it to a neighbouring line.

Rules mirrored from GitLab (`lib/gitlab/diff/parser.rb`, `lib/gitlab/git.rb`, Discussions API docs):
- added line -> `new_line` only; removed line -> `old_line` only; unchanged line -> both;
- a new or deleted file has `old_path == new_path`; a rename carries both names;
- `line_code = sha1(new_path)_<old counter>_<new counter>`, where the counters are the parser's running
  numbers: an added line also has an old counter (the old line it precedes, 0 in a new file) and a
  removed line a new counter (0 in a deleted file).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DiffLineKind = Literal["added", "removed", "context"]
Side = Literal["new", "old"]

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_SHA = r"^[0-9a-f]{7,64}$"
_BINARY_MARKERS = ("Binary files ", "GIT binary patch")


class DiffParseError(ValueError):
    """A file's diff text is not a unified diff this module can number reliably."""


@dataclass(frozen=True)
class DiffLine:
    kind: DiffLineKind
    old_line: int | None  # line number in the old file; None for an added line
    new_line: int | None  # line number in the new file; None for a removed line
    text: str  # content without the +/-/space prefix and without the line ending
    hunk: int  # index into FileDiff.hunks
    # GitLab's running counters (Gitlab::Diff::Line#old_pos/new_pos): equal to old_line/new_line where
    # those exist, otherwise the counter's value when the line was read. Only used for line codes.
    old_pos: int
    new_pos: int
    no_newline_at_eof: bool = False


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    section: str  # text after the closing @@ (often the enclosing function)

    def covers(self, side: Side, line: int) -> bool:
        start, count = (self.new_start, self.new_count) if side == "new" else (self.old_start, self.old_count)
        return start <= line < start + count

    def span(self, side: Side) -> str:
        start, count = (self.new_start, self.new_count) if side == "new" else (self.old_start, self.old_count)
        return f"{start}-{start + count - 1}" if count > 1 else str(start) if count == 1 else ""


@dataclass(frozen=True)
class FileDiff:
    old_path: str
    new_path: str
    new_file: bool
    deleted_file: bool
    renamed_file: bool
    lines: tuple[DiffLine, ...]
    hunks: tuple[Hunk, ...]
    binary: bool = False
    too_large: bool = False

    def find_line(self, side: Side, number: int) -> DiffLine | None:
        """The diff line showing `number` on `side` (added/context for new, removed/context for old)."""
        attr = "new_line" if side == "new" else "old_line"
        for line in self.lines:
            if getattr(line, attr) == number:
                return line
        return None


class DiffRefs(BaseModel):
    """The three SHAs of the MR diff version the positions are computed against."""

    model_config = ConfigDict(frozen=True)

    base_sha: str = Field(pattern=_SHA)
    start_sha: str = Field(pattern=_SHA)
    head_sha: str = Field(pattern=_SHA)


class LineRangeEnd(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_code: str
    type: Literal["new", "old"] | None  # "new" added, "old" removed, None unchanged
    old_line: int | None
    new_line: int | None


class LineRange(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: LineRangeEnd
    end: LineRangeEnd


class DiffPosition(BaseModel):
    """A `position` GitLab accepts for `POST /merge_requests/:iid/discussions`."""

    model_config = ConfigDict(frozen=True)

    base_sha: str = Field(pattern=_SHA)
    start_sha: str = Field(pattern=_SHA)
    head_sha: str = Field(pattern=_SHA)
    position_type: Literal["text"] = "text"
    old_path: str = Field(min_length=1)
    new_path: str = Field(min_length=1)
    old_line: int | None = Field(None, ge=1)
    new_line: int | None = Field(None, ge=1)
    line_range: LineRange | None = None

    @model_validator(mode="after")
    def _names_a_line(self) -> DiffPosition:
        if self.old_line is None and self.new_line is None:
            raise ValueError("a text position needs old_line, new_line or both")
        return self

    def to_gitlab(self) -> dict[str, Any]:
        """The exact `position` payload: absent line fields are omitted, not sent as null."""
        payload: dict[str, Any] = {
            "base_sha": self.base_sha,
            "start_sha": self.start_sha,
            "head_sha": self.head_sha,
            "position_type": self.position_type,
            "old_path": self.old_path,
            "new_path": self.new_path,
        }
        if self.old_line is not None:
            payload["old_line"] = self.old_line
        if self.new_line is not None:
            payload["new_line"] = self.new_line
        if self.line_range is not None:
            payload["line_range"] = self.line_range.model_dump()
        return payload


def line_code(path: str, old_pos: int, new_pos: int) -> str:
    """GitLab's `Gitlab::Git.diff_line_code`: `<sha1(path)>_<old>_<new>`."""
    digest = hashlib.sha1(path.encode(), usedforsecurity=False).hexdigest()
    return f"{digest}_{old_pos}_{new_pos}"


def parse_file_diff(change: Mapping[str, Any]) -> FileDiff:
    """Parse one entry of GitLab's MR `changes`/`diffs` into numbered lines.

    Raises DiffParseError for a missing path, a malformed hunk header, a hunk whose body disagrees with
    its header counts (truncated or corrupted text) or a line that is not part of a unified diff.
    An empty diff (binary, too large, pure rename, mode change) parses to a FileDiff without lines.
    """
    old_path = change.get("old_path") or change.get("new_path")
    new_path = change.get("new_path") or change.get("old_path")
    if not isinstance(old_path, str) or not isinstance(new_path, str):
        raise DiffParseError("diff entry has neither old_path nor new_path")
    diff = change.get("diff") or ""
    if not isinstance(diff, str):
        raise DiffParseError(f"diff of {new_path} is {type(diff).__name__}, expected text")
    new_file, deleted_file = bool(change.get("new_file")), bool(change.get("deleted_file"))
    if new_file:
        old_path = new_path
    elif deleted_file:
        new_path = old_path
    lines, hunks, binary = _parse_body(diff, new_path)
    return FileDiff(
        old_path=old_path,
        new_path=new_path,
        new_file=new_file,
        deleted_file=deleted_file,
        renamed_file=bool(change.get("renamed_file")) and old_path != new_path,
        lines=tuple(lines),
        hunks=tuple(hunks),
        binary=binary,
        too_large=bool(change.get("too_large")) or bool(change.get("collapsed")),
    )


def _parse_body(diff: str, path: str) -> tuple[list[DiffLine], list[Hunk], bool]:
    # Split on "\n" only: str.splitlines() would also break on \r, \f, \x1c or U+2028 inside content.
    raw = diff.split("\n")
    if raw and raw[-1] == "":
        raw.pop()
    lines: list[DiffLine] = []
    hunks: list[Hunk] = []
    binary = False
    i = 0
    while i < len(raw) and not raw[i].startswith("@@"):
        # Optional git headers (diff --git, index, ---/+++, mode and rename lines) precede the hunks.
        binary = binary or raw[i].startswith(_BINARY_MARKERS)
        i += 1
    while i < len(raw):
        row = raw[i]
        if row == "" and all(r == "" for r in raw[i:]):
            break  # trailing blank lines after the last hunk
        match = _HUNK_HEADER.match(row.rstrip("\r"))
        if match is None:
            raise DiffParseError(f"{path}: expected a hunk header at diff line {i + 1}, got {row[:80]!r}")
        hunk = Hunk(
            old_start=int(match[1]),
            old_count=int(match[2]) if match[2] is not None else 1,
            new_start=int(match[3]),
            new_count=int(match[4]) if match[4] is not None else 1,
            section=match[5].strip(),
        )
        hunks.append(hunk)
        i = _parse_hunk(raw, i + 1, hunk, len(hunks) - 1, lines, path)
    return lines, hunks, binary


def _parse_hunk(raw: list[str], i: int, hunk: Hunk, index: int, out: list[DiffLine], path: str) -> int:
    old_pos, new_pos = hunk.old_start, hunk.new_start
    old_left, new_left = hunk.old_count, hunk.new_count
    while old_left > 0 or new_left > 0 or (i < len(raw) and raw[i].startswith("\\")):
        if i >= len(raw):
            raise DiffParseError(
                f"{path}: hunk @@ -{hunk.old_start} +{hunk.new_start} @@ ends early "
                f"({old_left} old and {new_left} new lines missing)"
            )
        row = raw[i]
        i += 1
        prefix, text = row[:1], row[1:].removesuffix("\r")
        if prefix == "\\":
            if out and out[-1].hunk == index:
                last = out.pop()
                out.append(replace(last, no_newline_at_eof=True))
            continue
        # An empty row is an unchanged empty line whose leading space was stripped by some tool.
        if prefix in (" ", "") and old_left > 0 and new_left > 0:
            out.append(DiffLine("context", old_pos, new_pos, text, index, old_pos, new_pos))
            old_pos, new_pos, old_left, new_left = old_pos + 1, new_pos + 1, old_left - 1, new_left - 1
        elif prefix == "+" and new_left > 0:
            out.append(DiffLine("added", None, new_pos, text, index, old_pos, new_pos))
            new_pos, new_left = new_pos + 1, new_left - 1
        elif prefix == "-" and old_left > 0:
            out.append(DiffLine("removed", old_pos, None, text, index, old_pos, new_pos))
            old_pos, old_left = old_pos + 1, old_left - 1
        else:
            raise DiffParseError(
                f"{path}: diff line {i} ({row[:80]!r}) does not fit hunk "
                f"@@ -{hunk.old_start},{hunk.old_count} +{hunk.new_start},{hunk.new_count} @@"
            )
    return i


class DiffIndex:
    """All files of one MR diff version, looked up by new or old path."""

    def __init__(self, diff_refs: DiffRefs, files: Iterable[FileDiff], broken: Mapping[str, str]) -> None:
        self.diff_refs = diff_refs
        self.files = tuple(files)
        self.broken = dict(broken)  # path -> why its diff could not be parsed

    @classmethod
    def from_changes(cls, changes: Iterable[Mapping[str, Any]], diff_refs: Mapping[str, Any]) -> DiffIndex:
        """Build from python-gitlab's `changes`/`diffs` entries and the MR's `diff_refs`.

        A missing or partial `diff_refs` (GitLab leaves it null for a moment after MR creation) raises
        pydantic's ValidationError; an entry whose diff cannot be parsed is kept in `broken` so that
        `resolve` can explain it instead of failing the whole review.
        """
        refs = DiffRefs.model_validate(diff_refs or {})
        files: list[FileDiff] = []
        broken: dict[str, str] = {}
        for n, change in enumerate(changes):
            if not isinstance(change, Mapping):
                raise DiffParseError(f"changes[{n}] is {type(change).__name__}, expected a mapping")
            try:
                files.append(parse_file_diff(change))
            except DiffParseError as exc:
                for key in ("old_path", "new_path"):
                    if isinstance(change.get(key), str):
                        broken[change[key]] = str(exc)
        return cls(refs, files, broken)

    def find(self, path: str) -> FileDiff | None:
        path = _normalise_path(path)
        for attr in ("new_path", "old_path"):
            for file in self.files:
                if getattr(file, attr) == path:
                    return file
        return None


def _normalise_path(path: str) -> str:
    path = path.strip()
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


@dataclass(frozen=True)
class Location:
    """Outcome of `resolve`: a position, or the reason there is none (for the fallback note)."""

    position: DiffPosition | None
    reason: str = ""  # why position is None
    range_note: str = ""  # why a requested end_line was not turned into a line_range


def resolve(
    index: DiffIndex, file: str, line: int, side: str | None = "new", end_line: int | None = None
) -> Location:
    """Map a finding's `file:line[-end_line]` on `side` to a GitLab position, exactly or not at all.

    `side` "new" matches added/unchanged lines by new number, "old" removed/unchanged lines by old
    number; anything else (None, "", unknown) tries new, then old. A deleted file has only an old side.
    A multi-line finding anchors on `end_line` with a `line_range` when both ends sit in the same hunk
    on that side; otherwise it anchors on `line` alone and `range_note` says why.
    """
    if isinstance(line, bool) or not isinstance(line, int) or line < 1:
        return Location(None, f"line {line!r} is not a positive line number")
    target = index.find(file)
    if target is None:
        clean = _normalise_path(file)
        if clean in index.broken:
            return Location(None, f"the diff of {clean} could not be read: {index.broken[clean]}")
        return Location(None, f"{clean} is not part of this merge request's diff")
    name = target.new_path
    if not target.lines:
        return Location(None, _no_lines_reason(target))
    sides: tuple[Side, ...]
    if target.deleted_file:
        sides = ("old",)
    elif side in ("new", "old"):
        sides = (side,)  # type: ignore[assignment]
    else:
        sides = ("new", "old")
    for candidate in sides:
        anchor = target.find_line(candidate, line)
        if anchor is not None:
            return _with_range(index.diff_refs, target, candidate, anchor, line, end_line)
    covered = ", ".join(filter(None, (h.span(sides[0]) for h in target.hunks))) or "none"
    return Location(
        None,
        f"line {line} ({' or '.join(sides)} side) of {name} is outside the changed hunks "
        f"(they show {sides[0]} lines {covered})",
    )


def _no_lines_reason(target: FileDiff) -> str:
    name = target.new_path
    if target.binary:
        return f"{name} is a binary file; its diff has no lines to comment on"
    if target.too_large:
        return f"the diff of {name} is too large for GitLab to show; no lines to comment on"
    if target.renamed_file:
        return f"{target.old_path} was renamed to {name} without content changes; no lines to comment on"
    return f"{name} has an empty diff (binary, too large or mode-only change); no lines to comment on"


def _with_range(
    refs: DiffRefs, target: FileDiff, side: Side, start: DiffLine, line: int, end_line: int | None
) -> Location:
    if end_line is None or end_line == line:
        return Location(_position(refs, target, start, None))
    if not isinstance(end_line, int) or end_line < line:
        return Location(_position(refs, target, start, None), range_note=f"end_line {end_line!r} < {line}")
    end = target.find_line(side, end_line)
    if end is None or end.hunk != start.hunk:
        note = f"lines {line}-{end_line} ({side} side) are not all in one hunk of {target.new_path}"
        return Location(_position(refs, target, start, None), range_note=note)
    span = LineRange(start=_range_end(target, start), end=_range_end(target, end))
    return Location(_position(refs, target, end, span))


def _range_end(target: FileDiff, line: DiffLine) -> LineRangeEnd:
    kind = {"added": "new", "removed": "old", "context": None}[line.kind]
    return LineRangeEnd(
        line_code=line_code(target.new_path, line.old_pos, line.new_pos),
        type=kind,  # type: ignore[arg-type]
        old_line=line.old_line,
        new_line=line.new_line,
    )


def _position(refs: DiffRefs, target: FileDiff, line: DiffLine, span: LineRange | None) -> DiffPosition:
    return DiffPosition(
        base_sha=refs.base_sha,
        start_sha=refs.start_sha,
        head_sha=refs.head_sha,
        old_path=target.old_path,
        new_path=target.new_path,
        old_line=line.old_line,
        new_line=line.new_line,
        line_range=span,
    )


def locate(
    index: DiffIndex, file: str, line: int, side: str | None = "new", end_line: int | None = None
) -> DiffPosition | None:
    """`resolve(...).position`: the position, or None when the caller must post a general note."""
    return resolve(index, file, line, side, end_line).position


def locate_reason(
    index: DiffIndex, file: str, line: int, side: str | None = "new", end_line: int | None = None
) -> str:
    """Why `locate` returns None for this location ("" when it does not)."""
    return resolve(index, file, line, side, end_line).reason
