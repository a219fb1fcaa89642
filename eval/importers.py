"""Public review benchmarks -> our corpus layout (`eval.corpus`), from data the user fetched.

Neither benchmark ships the repositories: point `--repos` at a directory of git clones named
`<repos>/<owner>/<name>` (e.g. `git clone https://github.com/FreeCAD/FreeCAD <repos>/FreeCAD/FreeCAD`)
that contain the commits the data names. The base tree is written whole and the head as the files
the MR changes, so expect large corpora for large repositories (`--limit`).

AACR-Bench (github.com/alibaba/aacr-bench, `dataset/positive_samples.json`): a JSON array of PRs
`{githubPrUrl, source_commit (base), target_commit (head), project_main_language, comments: [{path,
note, side: "right"|"left", from_line, to_line, category, is_ai_comment}]}`. Comments on the right
(new) side become expected findings at `to_line` within [from_line, to_line] (the last line of the
range, where GitLab anchors a multi-line comment); left-side comments are on removed lines and are
left out (our comments are scored on the head side).

Martian's Code Review Bench (github.com/withmartian/code-review-benchmark,
`offline/golden_comments/<repo>.json`): a JSON array of PRs `{pr_title, url, original_url?,
comments: [{comment, severity}]}`, golden comments without file or line. Its PRs are GitHub PRs:
fetch each as `git fetch origin pull/<N>/head:pr-<N>` in the clone of `url`'s repository; the base
is the merge base of `pr-<N>` with the clone's HEAD. Its findings have no location, so the scoring
matches them by count only (an upper bound, said so in the report); Martian's own evaluation uses
an LLM judge, which this harness does not.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from eval.corpus import MAX_FILE_BYTES, Case, CorpusError, write_case
from eval.scoring import Expected

_PR_URL = re.compile(r"github\.com/([^/]+)/([^/]+)/pull/(\d+)", re.IGNORECASE)
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")


class ImportFailed(Exception):
    """The benchmark file itself cannot be read."""


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise CorpusError(f"git {' '.join(args[:2])} in {repo}: {result.stderr.strip()[:300]}")
    return result.stdout


def _tree(repo: Path, commit: str, paths: list[str] | None = None) -> dict[str, str]:
    """Text files of `commit` (all, or `paths`); binary and oversized files are left out."""
    listing = _git(repo, "ls-tree", "-r", "-z", "--long", commit, *(["--", *paths] if paths else []))
    files: dict[str, str] = {}
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        _mode, kind, sha, size = meta.split()
        if kind != "blob" or size == "-" or int(size) > MAX_FILE_BYTES:
            continue
        blob = subprocess.run(
            ["git", "-C", str(repo), "cat-file", "blob", sha], capture_output=True, timeout=60
        )
        try:
            files[path] = blob.stdout.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return files


def _case_from_commits(
    repos: Path, owner: str, name: str, base: str, head: str, case_id: str, title: str, language: str,
    expected: list[Expected],
) -> Case:  # fmt: skip
    repo = repos / owner / name
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        raise CorpusError(f"{case_id}: no git clone at {repo}")
    changed = [
        line.split("\t")
        for line in _git(repo, "diff", "--name-status", "--no-renames", base, head).splitlines()
    ]
    deleted = tuple(parts[1] for parts in changed if parts[0] == "D")
    changed_paths = [parts[-1] for parts in changed if parts[0] != "D"]
    base_tree = _tree(repo, base)
    head_files = _tree(repo, head, changed_paths) if changed_paths else {}
    head_tree = {**base_tree, **head_files}
    for path in deleted:
        head_tree.pop(path, None)
    kept = [
        e
        for e in expected
        if e.file is None or (e.file in head_tree and e.line <= len(head_tree[e.file].splitlines()))
    ]  # type: ignore[operator]
    if expected and not kept:
        raise CorpusError(f"{case_id}: none of its {len(expected)} findings lies in the head tree")
    return Case(case_id, language, title, "", base_tree, head_tree, deleted, tuple(kept))


def _load_array(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"{path}: not a readable JSON file: {exc}") from None
    if not isinstance(data, list):
        raise ImportFailed(f"{path}: expected a JSON array of PRs, got {type(data).__name__}")
    return data


def import_aacr(
    data: Path, repos: Path, out: Path, *, limit: int | None = None
) -> tuple[list[Path], list[str]]:
    written: list[Path] = []
    skipped: list[str] = []
    for index, record in enumerate(_load_array(data)[:limit]):
        url = str(record.get("githubPrUrl", "")) if isinstance(record, dict) else ""
        match = _PR_URL.search(url)
        base, head = (record.get("source_commit"), record.get("target_commit")) if match else (None, None)
        if not match or not base or not head:
            skipped.append(f"record {index}: needs githubPrUrl, source_commit and target_commit")
            continue
        owner, name, number = match.groups()
        expected = []
        for comment in record.get("comments") or []:
            if not isinstance(comment, dict) or str(comment.get("side", "right")).lower() != "right":
                continue
            lines = [
                v for v in (comment.get("from_line"), comment.get("to_line")) if isinstance(v, int) and v > 0
            ]
            if comment.get("path") and lines:
                note = " ".join(str(comment.get("note", "")).split())
                expected.append(
                    Expected(str(comment["path"]), max(lines), str(comment.get("category", "")), note[:200])
                )
        case_id = _SAFE_ID.sub("-", f"aacr-{owner}-{name}-{number}")
        if not expected:  # not a clean MR: its comments are on removed lines, which we do not score
            skipped.append(f"{case_id}: no comment on the new side")
            continue
        try:
            case = _case_from_commits(
                repos, owner, name, str(base), str(head), case_id, f"{owner}/{name}#{number}",
                str(record.get("project_main_language", "")), expected,
            )  # fmt: skip
            written.append(write_case(out, case))
        except CorpusError as exc:
            skipped.append(str(exc))
    return written, skipped


def import_martian(
    data: Path, repos: Path, out: Path, *, limit: int | None = None
) -> tuple[list[Path], list[str]]:
    written: list[Path] = []
    skipped: list[str] = []
    for index, record in enumerate(_load_array(data)[:limit]):
        url = str(record.get("url", "")) if isinstance(record, dict) else ""
        match = _PR_URL.search(url)
        if not match:
            skipped.append(f"record {index}: needs a GitHub PR url")
            continue
        owner, name, number = match.groups()
        repo = repos / owner / name
        case_id = _SAFE_ID.sub("-", f"martian-{owner}-{name}-{number}")
        try:
            head = _git(repo, "rev-parse", f"pr-{number}").strip()
            base = _git(repo, "merge-base", "HEAD", head).strip()
            expected = [
                Expected(
                    None, None, str(c.get("severity", "")), " ".join(str(c.get("comment", "")).split())[:200]
                )
                for c in record.get("comments") or []
                if isinstance(c, dict)
            ]
            if not expected:
                raise CorpusError("no golden comments")
            case = _case_from_commits(
                repos, owner, name, base, head, case_id, str(record.get("pr_title") or case_id), "", expected
            )
            written.append(write_case(out, case))
        except CorpusError as exc:
            skipped.append(
                f"{case_id}: {exc} (fetch it: git -C {repo} fetch origin pull/{number}/head:pr-{number})"
            )
    return written, skipped
