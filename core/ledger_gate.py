"""Which new findings a review may post, by the ledger's rules. Pure.

- The first review of an MR raises everything it finds.
- A later review comments only on lines the new commits touched (added or removed since the last
  reviewed head), plus critical findings anywhere when REVIEW_CRITICAL_ANYWHERE is on.
- A finding the ledger knows, in any state (open, resolved, rebutted, closed, ...), is never raised
  again: not with the same fingerprint, and not reworded: the same file, within NEAR_LINES of the
  entry's anchor (followed across pushes), with a title sharing at least half of its words
  (overlap coefficient, light stemming) or the same code under it and the same category.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from contracts.ledger import Ledger, LedgerEntry
from contracts.models import Finding
from core.diff_positions import DiffIndex
from core.fingerprint import normalise_code, normalise_text
from core.ledger_diff import TreeDiff

NEAR_LINES = 3
TITLE_OVERLAP = 0.5


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def title_words(title: str) -> set[str]:
    return {_stem(w) for w in normalise_text(title).split()}


def title_overlap(a: str, b: str) -> float:
    wa, wb = title_words(a), title_words(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / min(len(wa), len(wb))


def code_hash(index: DiffIndex | None, finding: Finding) -> str:
    """Hash of the normalised code a finding points at ("" when the diff does not show it)."""
    target = index.find(finding.file) if index else None
    if target is None:
        return ""
    side = "old" if finding.side == "old" or target.deleted_file else "new"
    end = min(finding.end_line or finding.line, finding.line + 50)
    lines = [target.find_line(side, n) for n in range(finding.line, end + 1)]
    code = normalise_code("\n".join(line.text for line in lines if line is not None))
    return hashlib.sha256(code.encode()).hexdigest()[:16] if code else ""


def _where(entry: LedgerEntry, diff: TreeDiff | None) -> tuple[str, int] | None:
    anchor = entry.anchor
    if anchor is None:
        return None
    if diff is None:
        return anchor.file, anchor.line
    moved = diff.move(anchor.file, anchor.line, anchor.end_line)
    return (moved.file, moved.line) if moved.file else (anchor.file, anchor.line)


def near_duplicate(
    finding: Finding, code: str, category: str, entry: LedgerEntry, diff: TreeDiff | None
) -> bool:
    where = _where(entry, diff)
    if where is None or where[0] != finding.file or abs(where[1] - finding.line) > NEAR_LINES:
        return False
    if title_overlap(finding.title, entry.title) >= TITLE_OVERLAP:
        return True
    return bool(code) and code == entry.code and category == entry.category


@dataclass
class Verdict:
    admitted: list[int] = field(default_factory=list)  # indexes into the findings
    repeats: int = 0
    held_back: int = 0


def admit(
    findings: Sequence[tuple[Finding, str, str, str]],
    ledger: Ledger | None,
    diff: TreeDiff | None,
    *,
    first_review: bool,
    critical_anywhere: bool,
) -> Verdict:
    """`findings`: (finding, fingerprint, code hash, category) of each planned finding."""
    entries = ledger.entries if ledger else []
    fingerprints = {e.fingerprint for e in entries}
    verdict = Verdict()
    for index, (finding, fp, code, category) in enumerate(findings):
        if fp in fingerprints or any(near_duplicate(finding, code, category, e, diff) for e in entries):
            verdict.repeats += 1
            continue
        on_new_code = (
            first_review
            or diff is None
            or diff.touched(finding.file, finding.line, finding.end_line, finding.side)
        )
        if not on_new_code and not (critical_anywhere and finding.severity == "critical"):
            verdict.held_back += 1
            continue
        verdict.admitted.append(index)
    return verdict
