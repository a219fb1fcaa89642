"""One-click GitLab suggestion blocks for a positioned review comment.

GitLab reads ```` ```suggestion:-N+M ```` as "replace the N lines above the commented line, that line,
and the M lines below it (new file, at the MR head) with the block's content". Only a comment on the
new side can carry one, and GitLab refuses more than 100 lines either way.
"""

from __future__ import annotations

import re

from core.diff_positions import DiffPosition
from core.sanitize import strip_unsafe

MAX_SUGGESTION_LINES = 100
_BACKTICK_RUN = re.compile(r"`+")


def suggestion_markdown(anchor: DiffPosition, start_line: int, end_line: int, replacement: str) -> str | None:
    """The suggestion block replacing new-file lines `start_line..end_line`, or None when there is none.

    `anchor` is the comment's position; the range must contain its `new_line`. `replacement` is the new
    text of those lines ("" deletes them; one trailing newline is optional). Returns None, never a
    broken block, when the anchor is a removed line, the range is invalid or does not contain the
    anchor, either side exceeds 100 lines, or the replacement hides bidi/invisible characters.
    `why_no_suggestion` gives the reason.
    """
    return _build(anchor, start_line, end_line, replacement)[0]


def why_no_suggestion(anchor: DiffPosition, start_line: int, end_line: int, replacement: str) -> str:
    """Why `suggestion_markdown` returns None for these arguments ("" when it does not)."""
    return _build(anchor, start_line, end_line, replacement)[1]


def _build(anchor: DiffPosition, start: int, end: int, replacement: str) -> tuple[str | None, str]:
    line = anchor.new_line
    if line is None:
        return None, "the comment is on a removed line; suggestions apply to the new file only"
    if not 1 <= start <= end:
        return None, f"invalid line range {start}-{end}"
    if not start <= line <= end:
        return None, f"line range {start}-{end} does not contain the commented line {line}"
    if end - start + 1 > MAX_SUGGESTION_LINES:
        return None, f"suggestion would replace {end - start + 1} lines (limit {MAX_SUGGESTION_LINES})"
    text = replacement.replace("\r\n", "\n")
    if strip_unsafe(text) != text:
        # A one-click change that hides characters from the reviewer is a Trojan Source vector.
        return None, "replacement contains control, bidi or invisible characters"
    lines = [] if text == "" else text.removesuffix("\n").split("\n")
    if len(lines) > MAX_SUGGESTION_LINES:
        return None, f"replacement has {len(lines)} lines (limit {MAX_SUGGESTION_LINES})"
    # A fence longer than any backtick run inside cannot be closed by the content (CommonMark).
    longest = max((len(run) for run in _BACKTICK_RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = "".join(f"{row}\n" for row in lines)
    return f"{fence}suggestion:-{line - start}+{end - line}\n{body}{fence}", ""
