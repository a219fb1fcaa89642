from __future__ import annotations

import re

import pytest

from core.diff_positions import DiffIndex, DiffPosition, locate
from core.suggestions import suggestion_markdown, why_no_suggestion

SHA = "0123456789abcdef0123456789abcdef01234567"
REFS = {"base_sha": SHA, "start_sha": SHA, "head_sha": SHA}

# New file at the MR head: 12 lines; the diff changed line 6 and added line 7.
NEW_FILE = "".join(f"row {n}\n" for n in range(1, 13)).replace("row 6\n", "row 6 fixed\n")
NEW_FILE = NEW_FILE.replace("row 7\n", "row 6.5\nrow 7\n")
DIFF = "@@ -3,7 +3,8 @@\n row 3\n row 4\n row 5\n-row 6\n+row 6 fixed\n+row 6.5\n row 7\n row 8\n row 9\n"
INDEX = DiffIndex.from_changes([{"old_path": "f.py", "new_path": "f.py", "diff": DIFF}], REFS)


def anchor(line: int, side: str = "new", end_line: int | None = None) -> DiffPosition:
    position = locate(INDEX, "f.py", line, side, end_line)
    assert position is not None
    return position


def parse_suggestion(markdown: str) -> tuple[int, int, str]:
    """(minus, plus, content) the way GitLab's CommonMark renderer reads the block."""
    first, _, rest = markdown.partition("\n")
    opening = re.fullmatch(r"(`{3,})suggestion:-(\d+)\+(\d+)", first)
    assert opening, first
    fence = opening[1]
    body: list[str] = []
    for row in rest.split("\n"):
        if re.fullmatch(r" {0,3}" + fence + r"`*\s*", row):
            break
        body.append(row)
    else:
        raise AssertionError("fence never closed")
    return int(opening[2]), int(opening[3]), "".join(f"{row}\n" for row in body)


def apply_suggestion(new_file_text: str, anchor_line: int, minus: int, plus: int, replacement: str) -> str:
    """What GitLab's "Apply suggestion" commits: lines anchor-minus..anchor+plus replaced by the content."""
    lines = new_file_text.splitlines(keepends=True)
    first, last = anchor_line - minus, anchor_line + plus
    return "".join(lines[: first - 1]) + replacement + "".join(lines[last:])


def applied(markdown: str | None, position: DiffPosition) -> str:
    assert markdown is not None
    minus, plus, content = parse_suggestion(markdown)
    assert position.new_line is not None
    return apply_suggestion(NEW_FILE, position.new_line, minus, plus, content)


def expected(replace_from: int, replace_to: int, new_rows: list[str]) -> str:
    rows = NEW_FILE.splitlines(keepends=True)
    return "".join(rows[: replace_from - 1] + [f"{r}\n" for r in new_rows] + rows[replace_to:])


def test_single_added_line() -> None:
    position = anchor(6)
    markdown = suggestion_markdown(position, 6, 6, "row 6 fixed properly")
    assert markdown == "```suggestion:-0+0\nrow 6 fixed properly\n```"
    assert applied(markdown, position) == expected(6, 6, ["row 6 fixed properly"])


def test_range_anchored_on_its_last_line_looks_upwards() -> None:
    position = anchor(5, end_line=7)
    assert position.new_line == 7 and position.line_range is not None
    markdown = suggestion_markdown(position, 5, 7, "merged 5-7\n")
    assert markdown is not None and markdown.startswith("```suggestion:-2+0\n")
    assert applied(markdown, position) == expected(5, 7, ["merged 5-7"])


def test_context_line_anchor_with_lines_below() -> None:
    position = anchor(4)
    assert (position.old_line, position.new_line) == (4, 4)
    markdown = suggestion_markdown(position, 4, 6, "a\nb\nc\nd")
    assert markdown is not None and markdown.startswith("```suggestion:-0+2\n")
    assert applied(markdown, position) == expected(4, 6, ["a", "b", "c", "d"])


def test_empty_replacement_deletes_the_lines() -> None:
    position = anchor(7)
    markdown = suggestion_markdown(position, 6, 7, "")
    assert markdown == "```suggestion:-1+0\n```"
    assert applied(markdown, position) == expected(6, 7, [])


def test_single_blank_line_is_not_a_deletion() -> None:
    position = anchor(6)
    markdown = suggestion_markdown(position, 6, 6, "\n")
    assert applied(markdown, position) == expected(6, 6, [""])


def test_replacement_with_backtick_fences_gets_a_longer_fence() -> None:
    position = anchor(6)
    replacement = 'doc = """\n```python\nprint(1)\n```\n"""\nraw = "````"'
    markdown = suggestion_markdown(position, 6, 6, replacement)
    assert markdown is not None and markdown.startswith("`````suggestion:-0+0\n")
    assert applied(markdown, position) == expected(6, 6, replacement.split("\n"))


def test_crlf_replacement_is_normalised() -> None:
    position = anchor(6)
    markdown = suggestion_markdown(position, 6, 6, "x = 1\r\ny = 2\r\n")
    assert applied(markdown, position) == expected(6, 6, ["x = 1", "y = 2"])


def test_indentation_and_tabs_are_preserved() -> None:
    position = anchor(6)
    markdown = suggestion_markdown(position, 6, 6, "    if x:\n\treturn y")
    assert applied(markdown, position) == expected(6, 6, ["    if x:", "\treturn y"])


@pytest.mark.parametrize(
    ("position_args", "start", "end", "replacement", "reason"),
    [
        ((6, "old"), 6, 6, "x", "removed line"),
        ((6, "new"), 7, 6, "x", "invalid line range"),
        ((6, "new"), 0, 6, "x", "invalid line range"),
        ((6, "new"), 7, 8, "x", "does not contain the commented line 6"),
        ((6, "new"), 6, 106, "x", "replace 101 lines"),
        ((6, "new"), 6, 6, "x\n" * 101, "replacement has 101 lines"),
        ((6, "new"), 6, 6, "ok = True  # \u202e hidden", "invisible"),
        ((6, "new"), 6, 6, "ok\u200b = True", "invisible"),
    ],
)
def test_no_suggestion_when_it_could_not_apply_cleanly(
    position_args: tuple, start: int, end: int, replacement: str, reason: str
) -> None:
    position = anchor(*position_args)
    assert suggestion_markdown(position, start, end, replacement) is None
    assert reason in why_no_suggestion(position, start, end, replacement)


def test_hundred_line_range_is_allowed() -> None:
    position = DiffPosition(**REFS, old_path="f.py", new_path="f.py", new_line=150)
    markdown = suggestion_markdown(position, 51, 150, "x")
    assert markdown is not None and markdown.startswith("```suggestion:-99+0\n")
    assert why_no_suggestion(position, 51, 150, "x") == ""
