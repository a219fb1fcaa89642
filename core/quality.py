"""Review quality figures from finding ledgers. Pure: the report command (`python -m quality
report`) reads the ledgers from the MRs' summary notes and hands them here.

Definitions (per finding, counted once, in the group of its project, severity and category):
- addressed: the code at its anchor changed and the agent verified the fix (verified or resolved
  after an `addressed` event); its time to address runs from raised to the first `addressed`;
- rebutted: someone allowed to dismiss rebutted it (whatever happened after);
- ignored: still open, reopened or addressed-but-unverified when its MR was merged (merged MRs only);
- outdated: its code went away;
- rates are shares of the findings of the group (ignored: of the findings of merged MRs);
- per MR: findings per MR, repeats prevented (findings the model repeated, not posted) and model
  tokens, which belong to a review and not to a finding, so they are given overall and per project,
  with tokens per addressed finding.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from contracts.ledger import Ledger, LedgerEntry

OPEN_STATES = frozenset({"open", "reopened", "addressed"})


@dataclass(frozen=True)
class MRLedger:
    project: str
    mr_iid: int
    merged: bool
    ledger: Ledger


def _seconds(start: str, end: str) -> float | None:
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max((b - a).total_seconds(), 0.0)


def addressed(entry: LedgerEntry) -> bool:
    return entry.ever("addressed") and entry.state in ("verified", "resolved") and not entry.ever("rebutted")


@dataclass
class Figures:
    findings: int = 0
    addressed: int = 0
    rebutted: int = 0
    outdated: int = 0
    ignored: int = 0
    at_merge: int = 0  # findings of merged MRs: the base of the ignored rate
    times: list[float] = field(default_factory=list)

    def add(self, entry: LedgerEntry, merged: bool) -> None:
        self.findings += 1
        if addressed(entry):
            self.addressed += 1
            seconds = _seconds(entry.raised_at, entry.first_at("addressed"))
            if seconds is not None:
                self.times.append(seconds)
        if entry.ever("rebutted"):
            self.rebutted += 1
        if entry.state == "outdated":
            self.outdated += 1
        if merged:
            self.at_merge += 1
            if entry.state in OPEN_STATES:
                self.ignored += 1

    def as_dict(self) -> dict[str, object]:
        def rate(n: int, d: int) -> float | None:
            return round(n / d, 4) if d else None

        return {
            "findings": self.findings,
            "addressed": self.addressed,
            "rebutted": self.rebutted,
            "ignored": self.ignored,
            "outdated": self.outdated,
            "addressed_rate": rate(self.addressed, self.findings),
            "rebuttal_rate": rate(self.rebutted, self.findings),
            "ignored_rate": rate(self.ignored, self.at_merge),
            "median_time_to_address_s": round(statistics.median(self.times), 1) if self.times else None,
        }


@dataclass
class Totals:
    mrs: int = 0
    repeats_prevented: int = 0
    held_back: int = 0
    tokens: int = 0
    reviews: int = 0


def report(ledgers: Iterable[MRLedger]) -> dict[str, object]:
    overall, totals = Figures(), Totals()
    projects: dict[str, tuple[Figures, Totals]] = {}
    severities: dict[str, Figures] = {}
    categories: dict[str, Figures] = {}
    for item in ledgers:
        figures, project_totals = projects.setdefault(item.project, (Figures(), Totals()))
        for target in (totals, project_totals):
            target.mrs += 1
            target.repeats_prevented += item.ledger.repeats_prevented
            target.held_back += item.ledger.held_back
            target.tokens += item.ledger.tokens
            target.reviews += item.ledger.reviews
        for entry in item.ledger.entries:
            for group in (
                overall,
                figures,
                severities.setdefault(entry.severity, Figures()),
                categories.setdefault(entry.category, Figures()),
            ):
                group.add(entry, item.merged)

    def with_totals(figures: Figures, t: Totals) -> dict[str, object]:
        return {
            **figures.as_dict(),
            "mrs": t.mrs,
            "reviews": t.reviews,
            "findings_per_mr": round(figures.findings / t.mrs, 2) if t.mrs else None,
            "repeats_prevented": t.repeats_prevented,
            "held_back_untouched": t.held_back,
            "tokens": t.tokens,
            "tokens_per_addressed": round(t.tokens / figures.addressed) if figures.addressed else None,
        }

    return {
        "overall": with_totals(overall, totals),
        "projects": {p: with_totals(f, t) for p, (f, t) in sorted(projects.items())},
        "severity": {s: f.as_dict() for s, f in sorted(severities.items())},
        "category": {c: f.as_dict() for c, f in sorted(categories.items())},
    }


_COLUMNS = (
    ("findings", "findings"),
    ("addressed_rate", "addressed"),
    ("rebuttal_rate", "rebutted"),
    ("ignored_rate", "ignored"),
    ("median_time_to_address_s", "t-address s"),
    ("findings_per_mr", "per MR"),
    ("repeats_prevented", "repeats prevented"),
    ("tokens_per_addressed", "tokens/addressed"),
)


def _fmt(key: str, value: object) -> str:
    if value is None:
        return "-"
    if key.endswith("_rate") and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    return str(value)


def table(figures: dict[str, object]) -> str:
    """The report as a plain-text table: one row per group."""
    rows: list[tuple[str, dict]] = [("overall", figures["overall"])]  # type: ignore[list-item]
    for section in ("projects", "severity", "category"):
        for name, values in figures[section].items():  # type: ignore[union-attr]
            rows.append((f"{section[:-1] if section == 'projects' else section} {name}", values))
    header = ["group", *(label for _, label in _COLUMNS)]
    cells = [[name, *(_fmt(key, values.get(key)) for key, _ in _COLUMNS)] for name, values in rows]
    widths = [max(len(str(row[i])) for row in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *cells]
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
