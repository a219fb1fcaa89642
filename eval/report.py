"""The figures of an evaluation run, as a table for people and JSON for comparing runs."""

from __future__ import annotations

import json
from typing import Any

from eval.scoring import CaseOutcome, Score


def _fmt(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def table(result: Score, outcomes: list[CaseOutcome], *, label: str = "") -> str:
    rows = [
        "| Case | Expected | Comments | Matched | On line | Tokens | Seconds | Status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_id = {o.case_id: o for o in outcomes}
    for case in result.cases:
        o = by_id[case.case_id]
        rows.append(
            f"| {case.case_id}{' (clean)' if o.clean else ''} | {case.expected} | {case.comments} | {case.matched} "
            f"| {case.on_line} | {o.tokens} | {o.seconds:.1f} | {o.status} |"
        )
    f = result.figures()
    summary = [
        f"Evaluation{f' ({label})' if label else ''}: {f['reviews']} reviews ({f['failed_reviews']} not posted), "
        f"{f['expected']} expected findings, {f['comments']} comments",
        f"  precision            {_fmt(f['precision'])}",
        f"  recall               {_fmt(f['recall'])}",
        f"  line precision       {_fmt(f['line_precision'])}",
        f"  comments / clean MR  {_fmt(f['comments_per_clean_mr'])}",
        f"  tokens / review      {_fmt(f['tokens_per_review'], 0)}",
        f"  seconds / review     {_fmt(f['seconds_per_review'], 1)}",
    ]
    if f["unlocated_expected"]:
        summary.append(
            f"  ({f['unlocated_expected']} expected findings have no file/line: matched by count, an upper bound)"
        )
    return "\n".join(rows + [""] + summary)


def as_json(result: Score, outcomes: list[CaseOutcome], settings: dict[str, Any]) -> str:
    return json.dumps(
        {
            "settings": settings,
            "figures": result.figures(),
            "cases": [
                {
                    "id": o.case_id,
                    "clean": o.clean,
                    "status": o.status,
                    "tokens": o.tokens,
                    "seconds": o.seconds,
                    "expected": len(o.expected),
                    "comments": [{"file": c.file, "line": c.line} for c in o.comments],
                    "matched": s.matched,
                    "on_line": s.on_line,
                }
                for o, s in zip(outcomes, result.cases, strict=True)
            ],
        },
        indent=2,
    )
