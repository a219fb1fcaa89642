"""Parse a file's unified diff the way GitLab's Gitlab::Diff::Parser numbers its lines."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class DiffLine:
    """One commentable line. `old_pos`/`new_pos` are GitLab's running counters, so an added line
    still carries the old counter (that is what goes into its line_code)."""

    index: int
    kind: str  # "new" (added), "old" (removed), "context"
    old_pos: int
    new_pos: int

    @property
    def old_line(self) -> int | None:
        """The `old_line` a position must carry for this line (None for an added line)."""
        return None if self.kind == "new" else self.old_pos

    @property
    def new_line(self) -> int | None:
        return None if self.kind == "old" else self.new_pos


def line_code(path: str, old_pos: int, new_pos: int) -> str:
    return f"{hashlib.sha1(path.encode()).hexdigest()}_{old_pos}_{new_pos}"  # noqa: S324 - GitLab's format


def parse_lines(diff: str) -> list[DiffLine]:
    lines: list[DiffLine] = []
    old = new = 0
    in_hunk = False
    for raw in diff.split("\n"):
        match = _HUNK.match(raw)
        if match:
            old, new = int(match.group(1)), int(match.group(2))
            # GitLab counts a new file's hunk "-0,0" from 0 and an ordinary hunk from its start line.
            in_hunk = True
            continue
        if not in_hunk or not raw or raw.startswith("\\"):
            continue
        marker = raw[0]
        if marker == "+":
            lines.append(DiffLine(len(lines), "new", old, new))
            new += 1
        elif marker == "-":
            lines.append(DiffLine(len(lines), "old", old, new))
            old += 1
        elif marker == " ":
            lines.append(DiffLine(len(lines), "context", old, new))
            old += 1
            new += 1
    return lines
