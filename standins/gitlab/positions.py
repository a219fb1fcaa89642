"""Inline-comment position validation, as strict as GitLab's DiffNote validations.

GitLab answers every position it cannot map onto a diff line with the same 400; the stand-in does
too, so a client that passes here would also pass on GitLab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from standins.gitlab.diffparse import DiffLine, line_code, parse_lines

LINE_CODE_ERROR = '400 Bad request - Note {:line_code=>["can\'t be blank", "must be a valid line code"]}'


class PositionError(ValueError):
    """The position does not map onto a diff line; `message` is GitLab's response message."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(reason)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class FileDiff:
    old_path: str
    new_path: str
    a_mode: str
    b_mode: str
    diff: str
    new_file: bool
    deleted_file: bool
    renamed_file: bool


@dataclass(frozen=True)
class VersionRefs:
    base_sha: str
    start_sha: str
    head_sha: str
    files: list[FileDiff]


def _as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PositionError(LINE_CODE_ERROR, f"line number {value!r} is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PositionError(LINE_CODE_ERROR, f"line number {value!r} is not an integer") from None


def _reject(reason: str) -> PositionError:
    return PositionError(LINE_CODE_ERROR, reason)


def validate_position(position: Any, versions: list[VersionRefs]) -> None:
    """Raise PositionError unless `position` names a commentable line of one of `versions`."""
    if not isinstance(position, dict):
        raise PositionError("400 Bad request - position is invalid", "position is not an object")
    if position.get("position_type") != "text":
        raise _reject(f"position_type {position.get('position_type')!r} is not 'text'")
    shas = (position.get("base_sha"), position.get("start_sha"), position.get("head_sha"))
    version = next((v for v in versions if (v.base_sha, v.start_sha, v.head_sha) == shas), None)
    if version is None:
        raise _reject("base_sha/start_sha/head_sha do not match any diff version of the merge request")
    old_path, new_path = position.get("old_path"), position.get("new_path")
    if not new_path and not old_path:
        raise _reject("old_path/new_path missing")
    # GitLab fills a missing path from the other one.
    old_path, new_path = old_path or new_path, new_path or old_path
    file = next((f for f in version.files if (f.old_path, f.new_path) == (old_path, new_path)), None)
    if file is None:
        raise _reject(f"no file {old_path!r} -> {new_path!r} in the diff of this version")
    lines = parse_lines(file.diff)
    target = _find_line(lines, _as_int(position.get("old_line")), _as_int(position.get("new_line")))
    line_range = position.get("line_range")
    if line_range is not None:
        _validate_range(line_range, lines, file.new_path, target)


def _find_line(lines: list[DiffLine], old: int | None, new: int | None) -> DiffLine:
    if old is None and new is None:
        raise _reject("neither old_line nor new_line given")
    for line in lines:
        if line.old_line == old and line.new_line == new:
            return line
    raise _reject(f"old_line={old} new_line={new} is not a line of the diff")


def _validate_range(line_range: Any, lines: list[DiffLine], path: str, target: DiffLine) -> None:
    if not isinstance(line_range, dict):
        raise _reject("line_range is not an object")
    by_code = {line_code(path, line.old_pos, line.new_pos): line for line in lines}
    ends = []
    for key in ("start", "end"):
        end = line_range.get(key)
        if not isinstance(end, dict):
            raise _reject(f"line_range.{key} missing")
        line = by_code.get(str(end.get("line_code")))
        if line is None:
            raise _reject(f"line_range.{key}.line_code {end.get('line_code')!r} is not in the diff")
        kind = end.get("type") or "context"
        if kind != line.kind:
            raise _reject(f"line_range.{key}.type {end.get('type')!r} does not match a {line.kind} line")
        for field, expected in (("old_line", line.old_line), ("new_line", line.new_line)):
            given = _as_int(end.get(field))
            if given is not None and given != expected:
                raise _reject(f"line_range.{key}.{field}={given} contradicts its line_code")
        ends.append(line)
    start, end_line = ends
    if start.index > end_line.index:
        raise _reject("line_range.start is after line_range.end")
    if end_line != target:
        raise _reject("the position's old_line/new_line must be line_range.end")
