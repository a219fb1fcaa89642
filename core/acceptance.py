"""Acceptance criteria of a Jira issue, from its description as markdown (ADF via `core/adf.py`, wiki
markup via `core/jira_markup.py`), and the MR section that maps each one to evidence.

Found, in this order of preference:
1. the list items (bullets, numbers, checkboxes) under a heading or a label line that names
   acceptance criteria ("Acceptance criteria", "AC", "Definition of done"), up to the next heading;
2. "Given ... When ... Then ..." scenarios anywhere (one criterion per scenario, its lines joined);
3. checklist items anywhere (`- [ ]` / `- [x]`, which is how ADF task lists render).
An issue with none of these has no criteria, and the MR says so rather than inventing some.

A criterion counts as covered only with evidence the service checked itself: the agent named a test
file, the file is part of the pushed change (or of the target branch), and the service's own test run
on an untouched tree passed. Otherwise it is "not covered", with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CRITERIA = 50
MAX_CRITERION_CHARS = 500
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")
_LABEL = re.compile(
    r"^\s*(?:\*\*|__)?\s*(acceptance\s+criteria|acceptance|a\.?c\.?|definition\s+of\s+done)\b\s*(?:\*\*|__)?\s*:?\s*(?:\*\*|__)?\s*$",
    re.IGNORECASE,
)
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?(.*\S)\s*$")
_CHECK = re.compile(r"^\s*[-*+]\s+\[[ xX]\]\s+(.*\S)\s*$")
_GWT = re.compile(
    r"^\s*(?:[-*+]\s+|\d+[.)]\s+)?(?:\*\*)?(given|when|then|and|but)\b(?:\*\*)?\s*(.*)$", re.IGNORECASE
)


def acceptance_criteria(markdown: str) -> list[str]:
    lines = (markdown or "").splitlines()
    found = (
        _section_items(lines)
        or _scenarios(lines)
        or [m.group(1) for line in lines if (m := _CHECK.match(line))]
    )
    unique: list[str] = []
    for item in found:
        text = " ".join(item.split())[:MAX_CRITERION_CHARS]
        if text and text not in unique:
            unique.append(text)
    return unique[:MAX_CRITERIA]


def _names_criteria(title: str) -> bool:
    return bool(
        _LABEL.match(title.strip().strip("*_").rstrip(":"))
        or re.search(r"acceptance criteria|definition of done", title, re.IGNORECASE)
    )


def _section_items(lines: list[str]) -> list[str]:
    items: list[str] = []
    inside = False
    for line in lines:
        heading = _HEADING.match(line)
        if heading:
            inside = _names_criteria(heading.group(1))
            continue
        if _LABEL.match(line):
            inside = True
            continue
        if inside:
            item = _ITEM.match(line)
            if item:
                items.append(item.group(1))
            elif line.strip() and not line.startswith((" ", "\t")) and items:
                inside = False  # the list is over: a paragraph after it is not a criterion
    return items


def _scenarios(lines: list[str]) -> list[str]:
    scenarios: list[str] = []
    current: list[str] = []
    for line in lines:
        match = _GWT.match(line)
        word = match.group(1).lower() if match else ""
        if word == "given":
            if current:
                scenarios.append(" ".join(current))
            current = [line.strip().lstrip("-*+ ").strip()]
        elif word in ("when", "then", "and", "but") and current:
            current.append(line.strip().lstrip("-*+ ").strip())
        elif current and line.strip():
            scenarios.append(" ".join(current))
            current = []
    if current:
        scenarios.append(" ".join(current))
    return [s for s in scenarios if re.search(r"\bthen\b", s, re.IGNORECASE)]


@dataclass(frozen=True)
class CriterionEvidence:
    criterion: str
    covered: bool
    tests: tuple[str, ...] = ()
    reason: str = ""


def map_evidence(
    criteria: list[str],
    answers: dict[int, tuple[str, list[str], str]],
    *,
    changed_files: set[str],
    existing_files: set[str],
    tests_passed: bool,
    tests_ran: bool,
) -> list[CriterionEvidence]:
    """One entry per criterion. `answers`: criterion number -> (status, test files, note) as the
    agent reported them; the coverage claim is checked here, never taken on the agent's word."""
    mapped: list[CriterionEvidence] = []
    for number, text in enumerate(criteria, 1):
        status, tests, note = answers.get(number, ("", [], ""))
        if status != "addressed":
            reason = note or ("the agent did not answer this criterion" if not status else "not addressed")
            mapped.append(CriterionEvidence(text, False, reason=reason))
            continue
        known = tuple(t for t in tests if t in changed_files or t in existing_files)
        if not tests:
            mapped.append(
                CriterionEvidence(text, False, reason="no test named for it" + (f" ({note})" if note else ""))
            )
        elif not known:
            mapped.append(
                CriterionEvidence(
                    text, False, reason=f"the named tests are not in the change: {', '.join(tests)[:200]}"
                )
            )
        elif not tests_ran:
            mapped.append(CriterionEvidence(text, False, known, reason="the tests were not run"))
        elif not tests_passed:
            mapped.append(CriterionEvidence(text, False, known, reason="the test run failed"))
        else:
            mapped.append(CriterionEvidence(text, True, known))
    return mapped
