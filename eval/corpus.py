"""A corpus of merge requests to review, and what each should get.

One directory per case:

    <case>/case.json   {"id", "language", "title", "description", "expected": [{"file", "line",
                        "severity", "title"}], "deleted": [paths removed at head]}
    <case>/base/...    the repository at the MR's target branch
    <case>/head/...    the files the MR adds or changes (laid over base)

`expected: []` is a clean MR: every comment on it is a false positive. `line` is the line number at
head (the new side). A case's id is its directory name unless case.json says otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eval.scoring import Expected

MAX_FILE_BYTES = 1024 * 1024


class CorpusError(ValueError):
    """A corpus that cannot be used, with the case and what is wrong."""


@dataclass(frozen=True)
class Case:
    id: str
    language: str
    title: str
    description: str
    base: dict[str, str]
    head: dict[str, str]
    deleted: tuple[str, ...]
    expected: tuple[Expected, ...]

    @property
    def clean(self) -> bool:
        return not self.expected

    @property
    def changed_paths(self) -> frozenset[str]:
        return frozenset(p for p, text in self.head.items() if self.base.get(p) != text) | frozenset(
            self.deleted
        )


def _tree(root: Path, case: str) -> dict[str, str]:
    files: dict[str, str] = {}
    if not root.is_dir():
        return files
    for path in sorted(root.rglob("*")):
        if path.is_file():
            if path.stat().st_size > MAX_FILE_BYTES:
                raise CorpusError(f"{case}: {path.relative_to(root)} is larger than {MAX_FILE_BYTES} bytes")
            try:
                files[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise CorpusError(f"{case}: {path.relative_to(root)} is not UTF-8 text") from None
    return files


def _expected(raw: object, case: str) -> tuple[Expected, ...]:
    if not isinstance(raw, list):
        raise CorpusError(f"{case}: expected must be a list")
    found = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise CorpusError(f"{case}: expected[{i}] must be an object")
        file, line = item.get("file"), item.get("line")
        if file is not None and not isinstance(file, str):
            raise CorpusError(f"{case}: expected[{i}].file must be a path")
        if line is not None and (not isinstance(line, int) or line < 1):
            raise CorpusError(f"{case}: expected[{i}].line must be a positive integer")
        if (file is None) != (line is None):
            raise CorpusError(f"{case}: expected[{i}] needs both file and line, or neither")
        found.append(Expected(file, line, str(item.get("severity", "")), str(item.get("title", ""))))
    return tuple(found)


def load_case(directory: Path) -> Case:
    name = directory.name
    try:
        meta = json.loads((directory / "case.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError(f"{name}: no case.json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{name}: case.json is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise CorpusError(f"{name}: case.json must be an object")
    case_id = str(meta.get("id") or name)
    base, head = _tree(directory / "base", case_id), _tree(directory / "head", case_id)
    deleted = tuple(str(p) for p in meta.get("deleted", []))
    expected = _expected(meta.get("expected", []), case_id)
    if not base:
        raise CorpusError(f"{case_id}: base/ is empty (the target branch needs at least one file)")
    case = Case(
        id=case_id,
        language=str(meta.get("language", "")),
        title=str(meta.get("title") or case_id),
        description=str(meta.get("description", "")),
        base=base,
        head={**base, **head},
        deleted=deleted,
        expected=expected,
    )
    for p in deleted:
        case.head.pop(p, None)
    if not case.changed_paths:
        raise CorpusError(f"{case_id}: head/ changes nothing")
    for exp in expected:
        if exp.file is not None and exp.file not in case.head:
            raise CorpusError(f"{case_id}: expected finding in {exp.file}, which is not in the head tree")
        if exp.file is not None and exp.line > len(case.head[exp.file].splitlines()):  # type: ignore[operator]
            raise CorpusError(f"{case_id}: expected line {exp.line} is past the end of {exp.file}")
    return case


def load_corpus(root: Path) -> list[Case]:
    if not root.is_dir():
        raise CorpusError(f"{root}: no such corpus directory")
    cases = [load_case(d) for d in sorted(root.iterdir()) if d.is_dir() and (d / "case.json").exists()]
    if not cases:
        raise CorpusError(f"{root}: no case directories (each needs a case.json)")
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise CorpusError(f"{root}: duplicate case ids")
    return cases


def write_case(root: Path, case: Case) -> Path:
    """Write `case` in the corpus layout (what the importers produce)."""
    directory = root / case.id
    for path in [*case.base, *case.head]:
        if path.startswith("/") or ".." in path.split("/"):
            raise CorpusError(f"{case.id}: unsafe path {path!r}")
    for label, files in (
        ("base", case.base),
        ("head", {p: t for p, t in case.head.items() if case.base.get(p) != t}),
    ):
        for path, text in files.items():
            target = directory / label / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    meta = {
        "id": case.id,
        "language": case.language,
        "title": case.title,
        "description": case.description,
        "deleted": list(case.deleted),
        "expected": [
            {"file": e.file, "line": e.line, "severity": e.severity, "title": e.title} for e in case.expected
        ],
    }
    (directory / "case.json").write_text(
        json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return directory
