"""The diff-position engine against diffs produced by real `git diff` in a temporary repository.

Each expected position is hand-computed from GitLab's rules, and every line code of every parsed line
is cross-checked against an independent, literal port of GitLab's `Gitlab::Diff::Parser` counters.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.diff_positions import (
    DiffIndex,
    DiffParseError,
    DiffPosition,
    line_code,
    locate,
    locate_reason,
    parse_file_diff,
    resolve,
)

# --- a real repository with one MR worth of changes ---------------------------------------------------

MULTI_OLD = "".join(f"line {n}\n" for n in range(1, 61))
MULTI_NEW = (
    MULTI_OLD.replace("line 5\n", "line 5 changed\n")
    .replace("line 30\n", "line 30\ninserted A\ninserted B\n")
    .replace("line 50\n", "")
)
MOVED_OLD = "".join(f"def f{n}(): return {n}\n" for n in range(1, 21))

BASE_FILES: dict[str, bytes] = {
    "src/multi.py": MULTI_OLD.encode(),
    "gone.txt": b"g1\ng2\ng3\ng4\n",
    "old_name.py": "".join(f"value_{n} = {n}\n" for n in range(1, 11)).encode(),
    "moved_a.py": MOVED_OLD.encode(),
    "eof_old.txt": b"x\ny",
    "eof_new.txt": b"p\nq\n",
    "eof_both.txt": b"k1\nk2",
    "crlf.txt": b"c1\r\nc2 \x0c feed\r\nc3\r\nc4 \xe2\x80\xa8 sep\r\nc5\r\n",
    "top.txt": b"t1\nt2\nt3\nt4\nt5\nt6\nt7\nt8\nt9\nt10\n",
    "dashes.txt": b"keep\n-- a\nkeep2\n",
    "img.bin": bytes(range(256)),
}
HEAD_FILES: dict[str, bytes | None] = {
    "src/multi.py": MULTI_NEW.encode(),
    "added.txt": b"a\nb\nc\n",
    "gone.txt": None,
    "old_name.py": None,
    "new_name.py": BASE_FILES["old_name.py"],
    "moved_a.py": None,
    "pkg/moved_b.py": MOVED_OLD.replace("return 10\n", "return 1000\n").encode(),
    "eof_old.txt": b"x\ny\nz\n",
    "eof_new.txt": b"p\nq",
    "eof_both.txt": b"k1\nK2",
    "crlf.txt": b"c1\r\nc2 \x0c feed\r\nC3 changed\r\nc4 \xe2\x80\xa8 sep\r\nc5\r\n",
    "top.txt": b"t0\nt1\nt2\nt3\nt4\nt5\nt6\nt7\nt8\nt9\nt10 end\n",
    "dashes.txt": b"keep\n++ b\nkeep2\n",
    "img.bin": bytes(reversed(range(256))),
}


@dataclass(frozen=True)
class MR:
    changes: list[dict]
    diff_refs: dict[str, str]
    raw_diffs: dict[str, str]  # new path -> full `git diff` output with headers


def _git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    }
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "core.autocrlf=false"]
    result = subprocess.run(["git", *identity, *args], cwd=repo, env=env, check=True, capture_output=True)
    return result.stdout.decode("utf-8", errors="surrogateescape")


def _write_tree(repo: Path, files: dict[str, bytes | None]) -> None:
    for name, content in files.items():
        path = repo / name
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


@pytest.fixture(scope="module")
def mr(tmp_path_factory: pytest.TempPathFactory) -> MR:
    repo = tmp_path_factory.mktemp("repo")
    _git(repo, "init", "-q", "-b", "main")
    _write_tree(repo, BASE_FILES)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()
    _write_tree(repo, HEAD_FILES)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "head")
    head = _git(repo, "rev-parse", "HEAD").strip()

    changes, raw = [], {}
    for row in _git(repo, "diff", "--name-status", "-M", base, head).splitlines():
        status, *paths = row.split("\t")
        old, new = (paths[0], paths[-1])
        full = _git(repo, "diff", "--no-color", "-M", base, head, "--", *dict.fromkeys([old, new]))
        raw[new] = full
        at = full.find("\n@@")
        changes.append(
            {  # the shape of GitLab's /changes entries: headers stripped, diff starts at the first @@
                "old_path": old,
                "new_path": new,
                "diff": full[at + 1 :] if at >= 0 else "",
                "new_file": status == "A",
                "deleted_file": status == "D",
                "renamed_file": status.startswith("R"),
            }
        )
    return MR(changes, {"base_sha": base, "start_sha": base, "head_sha": head}, raw)


@pytest.fixture(scope="module")
def index(mr: MR) -> DiffIndex:
    return DiffIndex.from_changes(mr.changes, mr.diff_refs)


def sha1(path: str) -> str:
    return hashlib.sha1(path.encode(), usedforsecurity=False).hexdigest()


# --- independent reference: GitLab's parser counters, ported line by line from lib/gitlab/diff/parser.rb


def gitlab_reference_codes(path: str, diff: str) -> list[tuple[str | None, str]]:
    """(type, line_code) of every non-meta line, computed the way GitLab's Ruby parser does."""
    out: list[tuple[str | None, str]] = []
    if not diff:
        return out  # `return [] if lines.blank?`
    line_old = line_new = 1
    for line in diff.split("\n")[:-1] if diff.endswith("\n") else diff.split("\n"):
        if line.startswith("@@ -"):
            line_old = abs(int(re.search(r"-[0-9]*", line)[0]))
            line_new = abs(int(re.search(r"\+[0-9]*", line)[0]))
            continue
        if line.startswith("\\"):
            continue
        kind = {"+": "new", "-": "old"}.get(line[:1])
        out.append((kind, f"{sha1(path)}_{line_old}_{line_new}"))
        if line[:1] == "+":
            line_new += 1
        elif line[:1] == "-":
            line_old += 1
        else:
            line_new += 1
            line_old += 1
    return out


def test_every_line_code_matches_gitlab_parser_and_file_contents(mr: MR, index: DiffIndex) -> None:
    checked = 0
    for change in mr.changes:
        parsed = parse_file_diff(change)
        ours = [
            (
                {"added": "new", "removed": "old", "context": None}[ln.kind],
                line_code(parsed.new_path, ln.old_pos, ln.new_pos),
            )
            for ln in parsed.lines
        ]
        assert ours == gitlab_reference_codes(parsed.new_path, change["diff"]), change["new_path"]
        old_text = _file_lines(BASE_FILES.get(parsed.old_path))
        new_text = _file_lines(HEAD_FILES.get(parsed.new_path))
        for ln in parsed.lines:
            if ln.old_line is not None:
                assert old_text[ln.old_line - 1] == ln.text
            if ln.new_line is not None:
                assert new_text[ln.new_line - 1] == ln.text
            checked += 1
    assert checked > 60


def _file_lines(content: bytes | None) -> list[str]:
    if content is None:
        return []
    return [line.removesuffix("\r") for line in content.decode(errors="replace").split("\n")]


def test_diff_with_git_headers_parses_like_gitlab_stripped_diff(mr: MR) -> None:
    for change in mr.changes:
        with_headers = dict(change, diff=mr.raw_diffs[change["new_path"]])
        assert parse_file_diff(with_headers).lines == parse_file_diff(change).lines


# --- the position table -----------------------------------------------------------------------------

# (file, line, side, end_line) -> (old_path, new_path, old_line, new_line, anchor line code suffix)
POSITIONS = [
    # modified file, several hunks
    (("src/multi.py", 5, "new", None), ("src/multi.py", "src/multi.py", None, 5, "6_5")),
    (("src/multi.py", 5, "old", None), ("src/multi.py", "src/multi.py", 5, None, "5_5")),
    (("src/multi.py", 3, "new", None), ("src/multi.py", "src/multi.py", 3, 3, "3_3")),
    (("src/multi.py", 31, "new", None), ("src/multi.py", "src/multi.py", None, 31, "31_31")),
    (("src/multi.py", 32, "new", None), ("src/multi.py", "src/multi.py", None, 32, "31_32")),
    (("src/multi.py", 33, "new", None), ("src/multi.py", "src/multi.py", 31, 33, "31_33")),
    (("src/multi.py", 50, "old", None), ("src/multi.py", "src/multi.py", 50, None, "50_52")),
    (("src/multi.py", 50, "new", None), ("src/multi.py", "src/multi.py", 48, 50, "48_50")),
    (("src/multi.py", 50, None, None), ("src/multi.py", "src/multi.py", 48, 50, "48_50")),
    (("./src/multi.py", 52, "sideways", None), ("src/multi.py", "src/multi.py", 51, 52, "51_52")),
    # added file
    (("added.txt", 1, "new", None), ("added.txt", "added.txt", None, 1, "0_1")),
    (("added.txt", 3, "new", None), ("added.txt", "added.txt", None, 3, "0_3")),
    # deleted file: only an old side, whatever side the finding names
    (("gone.txt", 2, "new", None), ("gone.txt", "gone.txt", 2, None, "2_0")),
    (("gone.txt", 4, "old", None), ("gone.txt", "gone.txt", 4, None, "4_0")),
    # rename with changes, by new path and by old path
    (("pkg/moved_b.py", 10, "new", None), ("moved_a.py", "pkg/moved_b.py", None, 10, "11_10")),
    (("moved_a.py", 10, "old", None), ("moved_a.py", "pkg/moved_b.py", 10, None, "10_10")),
    (("pkg/moved_b.py", 8, "new", None), ("moved_a.py", "pkg/moved_b.py", 8, 8, "8_8")),
    # no newline at the end of the old file, the new file, and both
    (("eof_old.txt", 2, "old", None), ("eof_old.txt", "eof_old.txt", 2, None, "2_2")),
    (("eof_old.txt", 2, "new", None), ("eof_old.txt", "eof_old.txt", None, 2, "3_2")),
    (("eof_old.txt", 3, "new", None), ("eof_old.txt", "eof_old.txt", None, 3, "3_3")),
    (("eof_new.txt", 2, "new", None), ("eof_new.txt", "eof_new.txt", None, 2, "3_2")),
    (("eof_both.txt", 2, "new", None), ("eof_both.txt", "eof_both.txt", None, 2, "3_2")),
    (("eof_both.txt", 1, "new", None), ("eof_both.txt", "eof_both.txt", 1, 1, "1_1")),
    # CRLF content, form feed and U+2028 inside lines must not shift numbering
    (("crlf.txt", 3, "new", None), ("crlf.txt", "crlf.txt", None, 3, "4_3")),
    (("crlf.txt", 4, "new", None), ("crlf.txt", "crlf.txt", 4, 4, "4_4")),
    (("crlf.txt", 5, "new", None), ("crlf.txt", "crlf.txt", 5, 5, "5_5")),
    # very first and very last line of a file
    (("top.txt", 1, "new", None), ("top.txt", "top.txt", None, 1, "1_1")),
    (("top.txt", 11, "new", None), ("top.txt", "top.txt", None, 11, "11_11")),
    (("top.txt", 10, "old", None), ("top.txt", "top.txt", 10, None, "10_11")),
    # content lines that look like ---/+++ file headers inside a hunk
    (("dashes.txt", 2, "old", None), ("dashes.txt", "dashes.txt", 2, None, "2_2")),
    (("dashes.txt", 2, "new", None), ("dashes.txt", "dashes.txt", None, 2, "3_2")),
]


@pytest.mark.parametrize(
    ("where", "expected"), POSITIONS, ids=[f"{w[0]}:{w[1]}:{w[2]}" for w, _ in POSITIONS]
)
def test_position_table(index: DiffIndex, mr: MR, where: tuple, expected: tuple) -> None:
    file, line, side, end_line = where
    old_path, new_path, old_line, new_line, code_suffix = expected
    position = locate(index, file, line, side, end_line)
    assert position is not None, locate_reason(index, file, line, side, end_line)
    payload = position.to_gitlab()
    want = {
        "base_sha": mr.diff_refs["base_sha"],
        "start_sha": mr.diff_refs["start_sha"],
        "head_sha": mr.diff_refs["head_sha"],
        "position_type": "text",
        "old_path": old_path,
        "new_path": new_path,
    }
    if old_line is not None:
        want["old_line"] = old_line
    if new_line is not None:
        want["new_line"] = new_line
    assert payload == want
    anchor = parse_file_diff(next(c for c in mr.changes if c["new_path"] == new_path))
    side_attr = "new_line" if new_line is not None else "old_line"
    number = new_line if new_line is not None else old_line
    hit = next(ln for ln in anchor.lines if getattr(ln, side_attr) == number)
    assert line_code(new_path, hit.old_pos, hit.new_pos) == f"{sha1(new_path)}_{code_suffix}"


def test_multi_line_range_of_added_lines_anchors_on_the_last(index: DiffIndex) -> None:
    position = locate(index, "src/multi.py", 31, "new", end_line=32)
    assert position is not None
    assert position.to_gitlab()["new_line"] == 32
    assert "old_line" not in position.to_gitlab()
    assert position.to_gitlab()["line_range"] == {
        "start": {
            "line_code": f"{sha1('src/multi.py')}_31_31",
            "type": "new",
            "old_line": None,
            "new_line": 31,
        },
        "end": {
            "line_code": f"{sha1('src/multi.py')}_31_32",
            "type": "new",
            "old_line": None,
            "new_line": 32,
        },
    }


def test_multi_line_range_from_context_to_context(index: DiffIndex) -> None:
    position = locate(index, "src/multi.py", 28, "new", end_line=33)
    assert position is not None
    assert (position.old_line, position.new_line) == (31, 33)
    assert position.line_range is not None
    assert position.line_range.start.model_dump() == {
        "line_code": f"{sha1('src/multi.py')}_28_28",
        "type": None,
        "old_line": 28,
        "new_line": 28,
    }
    assert position.line_range.end.line_code == f"{sha1('src/multi.py')}_31_33"


def test_multi_line_range_on_the_old_side_of_a_deleted_file(index: DiffIndex) -> None:
    position = locate(index, "gone.txt", 1, "old", end_line=4)
    assert position is not None
    assert position.to_gitlab()["old_line"] == 4 and "new_line" not in position.to_gitlab()
    assert position.line_range is not None
    assert (position.line_range.start.line_code, position.line_range.start.type) == (
        f"{sha1('gone.txt')}_1_0",
        "old",
    )
    assert position.line_range.end.line_code == f"{sha1('gone.txt')}_4_0"


def test_range_across_hunks_anchors_on_the_first_line_without_range(index: DiffIndex) -> None:
    result = resolve(index, "src/multi.py", 5, "new", end_line=31)
    assert result.position is not None
    assert (result.position.new_line, result.position.line_range) == (5, None)
    assert "not all in one hunk" in result.range_note


def test_range_ending_outside_the_diff_anchors_on_the_first_line(index: DiffIndex) -> None:
    result = resolve(index, "src/multi.py", 31, "new", end_line=45)
    assert (
        result.position is not None and result.position.new_line == 31 and result.position.line_range is None
    )
    assert result.range_note


def test_reversed_range_anchors_on_line(index: DiffIndex) -> None:
    result = resolve(index, "src/multi.py", 32, "new", end_line=31)
    assert (
        result.position is not None and result.position.new_line == 32 and result.position.line_range is None
    )
    assert "end_line" in result.range_note


# --- why a location has no position ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "line", "side", "reason"),
    [
        ("nope.py", 1, "new", "nope.py is not part of this merge request's diff"),
        ("src/multi.py", 20, "new", "line 20 (new side) of src/multi.py is outside the changed hunks"),
        ("src/multi.py", 40, "old", "line 40 (old side) of src/multi.py is outside the changed hunks"),
        ("src/multi.py", 0, "new", "line 0 is not a positive line number"),
        ("new_name.py", 3, "new", "old_name.py was renamed to new_name.py without content changes"),
        ("img.bin", 1, "new", "img.bin has an empty diff"),
        ("added.txt", 4, "new", "(they show new lines 1-3)"),
    ],
)
def test_unlocatable_lines_say_why(index: DiffIndex, file: str, line: int, side: str, reason: str) -> None:
    assert locate(index, file, line, side) is None
    assert reason in locate_reason(index, file, line, side)


def test_never_moves_to_a_neighbouring_line(index: DiffIndex) -> None:
    # hunk 2 shows new lines 28-35 and hunk 3 new 49-54: 36 and 48 are not snapped to 35 or 49
    assert locate(index, "src/multi.py", 36, "new") is None
    assert locate(index, "src/multi.py", 48, "new") is None
    assert locate(index, "src/multi.py", 49, "new") is not None


def test_binary_marker_in_git_headers_is_reported(mr: MR) -> None:
    change = next(c for c in mr.changes if c["new_path"] == "img.bin")
    raw = mr.raw_diffs["img.bin"]
    assert "Binary files" in raw
    index = DiffIndex.from_changes([dict(change, diff=raw)], mr.diff_refs)
    assert "img.bin is a binary file" in locate_reason(index, "img.bin", 1, "new")


def test_too_large_diff_is_reported(mr: MR) -> None:
    change = {"old_path": "big.sql", "new_path": "big.sql", "diff": "", "too_large": True}
    index = DiffIndex.from_changes([change], mr.diff_refs)
    assert "too large" in locate_reason(index, "big.sql", 1, "new")


# --- malformed input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diff", "message"),
    [
        ("@@ -1,3 +1,3 @@\n a\n-b\n", "ends early"),
        ("@@ -1,2 +1,2 @@\n a\n*b\n+c\n", "does not fit hunk"),
        ("@@ -1,1 +1,1 @@\n-a\n+b\n c\n", "expected a hunk header"),
        ("@@ -x +1 @@\n+a\n", "expected a hunk header"),
        ("@@ -1 +1 @@\n-a\n+b\n@@ -1 +1 @@\n", "ends early"),
    ],
)
def test_malformed_diffs_raise_a_clear_error(diff: str, message: str) -> None:
    with pytest.raises(DiffParseError, match=message):
        parse_file_diff({"old_path": "f", "new_path": "f", "diff": diff})


def test_broken_file_diff_is_explained_and_others_still_work(mr: MR) -> None:
    broken = {"old_path": "bad.py", "new_path": "bad.py", "diff": "@@ -1,5 +1,5 @@\n a\n"}
    index = DiffIndex.from_changes([broken, *mr.changes], mr.diff_refs)
    assert locate(index, "bad.py", 1, "new") is None
    assert "could not be read" in locate_reason(index, "bad.py", 1, "new")
    assert locate(index, "added.txt", 1, "new") is not None


def test_stripped_blank_context_line_is_still_context() -> None:
    parsed = parse_file_diff({"old_path": "f", "new_path": "f", "diff": "@@ -1,3 +1,3 @@\n a\n\n-b\n+c\n"})
    assert [(ln.kind, ln.old_line, ln.new_line) for ln in parsed.lines] == [
        ("context", 1, 1),
        ("context", 2, 2),
        ("removed", 3, None),
        ("added", None, 3),
    ]


def test_hunk_header_without_counts_means_one_line() -> None:
    parsed = parse_file_diff({"old_path": "f", "new_path": "f", "diff": "@@ -7 +7 @@ def g():\n-a\n+b\n"})
    assert parsed.hunks[0].section == "def g():"
    assert [(ln.old_line, ln.new_line) for ln in parsed.lines] == [(7, None), (None, 7)]


@pytest.mark.parametrize(
    "diff_refs",
    [
        None,
        {},
        {"base_sha": "a" * 40, "start_sha": "b" * 40},
        {"base_sha": "zz", "start_sha": "b" * 40, "head_sha": "c" * 40},
    ],
)
def test_missing_or_invalid_diff_refs_are_refused(diff_refs: dict | None) -> None:
    with pytest.raises(ValidationError):
        DiffIndex.from_changes([], diff_refs)  # type: ignore[arg-type]


def test_non_mapping_change_is_refused(mr: MR) -> None:
    with pytest.raises(DiffParseError, match=r"changes\[0\]"):
        DiffIndex.from_changes(["not a dict"], mr.diff_refs)  # type: ignore[list-item]


def test_position_needs_a_line() -> None:
    with pytest.raises(ValidationError, match="needs old_line, new_line or both"):
        DiffPosition(base_sha="a" * 40, start_sha="a" * 40, head_sha="a" * 40, old_path="f", new_path="f")


# --- property: any unified diff (difflib's generator, independent of git) numbers and locates exactly ---

lines_strategy = st.lists(st.sampled_from(["a", "b", "c", "", "-- x", "++ y", "\\ z", "@@ w"]), max_size=40)


@settings(max_examples=150, deadline=None)
@given(old=lines_strategy, new=lines_strategy)
def test_any_unified_diff_numbers_and_locates_every_line(old: list[str], new: list[str]) -> None:
    diff = "".join(f"{row}\n" for row in difflib.unified_diff(old, new, "a/f", "b/f", lineterm=""))
    refs = {"base_sha": "a" * 40, "start_sha": "a" * 40, "head_sha": "b" * 40}
    index = DiffIndex.from_changes([{"old_path": "f", "new_path": "f", "diff": diff}], refs)
    parsed = index.files[0]
    body = diff[diff.find("@@") :] if "@@" in diff else ""
    codes = [(ln.kind, line_code("f", ln.old_pos, ln.new_pos)) for ln in parsed.lines]
    kinds = {"new": "added", "old": "removed", None: "context"}
    assert codes == [(kinds[k], c) for k, c in gitlab_reference_codes("f", body)]
    for ln in parsed.lines:
        if ln.old_line is not None:
            assert old[ln.old_line - 1] == ln.text
        if ln.new_line is not None:
            assert new[ln.new_line - 1] == ln.text
        side = "old" if ln.kind == "removed" else "new"
        position = locate(index, "f", ln.old_line if side == "old" else ln.new_line, side)
        assert position is not None
        assert (position.old_line, position.new_line) == (ln.old_line, ln.new_line)
