"""Splitting a large review into file bundles, and putting the bundles' results back together. Pure.

A merge request whose diff exceeds one agent run's budget (REVIEW_MAX_DIFF_LINES lines, or
REVIEW_BUNDLE_MAX_TOKENS estimated tokens) is reviewed in bundles, each its own agent run. Related
files stay together: a directory's files go into one bundle where they fit, and a test goes with
the code it tests even when it lives elsewhere (`tests/test_calc.py` with `app/calc.py`), so the
reviewer sees both. Bundles are packed in path order, so neighbouring directories share a bundle.
A single file over one run's budget gets a bundle of its own and is reviewed in part.

The per-MR caps (REVIEW_MAX_BUNDLES, REVIEW_MAX_TOKENS_PER_MR) are applied here: what they leave
out is listed per file with the cap that left it out, and a note says the cap was hit. Nothing is
dropped without a line in the coverage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from contracts.agent_tasks import ReviewTask
from contracts.coverage import ChangedFile, PlannedBundle
from contracts.delivery import Coverage, FileCoverage
from contracts.models import MAX_FINDINGS_PER_MR, Finding, Resolution, ReviewRunResult
from core.fingerprint import normalise_text
from core.repo_instructions import path_matches

# What one agent run costs beyond its diff: the CLI's system prompt and tool schemas, our prompt's
# fixed parts, the MR text. Measured with the pinned CLI at about 12k prompt tokens; rounded up.
RUN_OVERHEAD_TOKENS = 15_000
CHARS_PER_TOKEN = 4
_SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2, "info": 3}
_TEST_DIRS = frozenset({"test", "tests", "spec", "specs", "__tests__", "testing"})
_TEST_NAME = re.compile(r"^(?:test_(?P<a>.+)|(?P<b>.+?)(?:_test|_spec|\.test|\.spec|Tests?|Spec))$")


@dataclass(frozen=True)
class BundleLimits:
    max_lines: int  # one run's diff lines (REVIEW_MAX_DIFF_LINES)
    max_tokens: int  # one run's estimated diff tokens (REVIEW_BUNDLE_MAX_TOKENS)
    max_bundles: int = 0  # per MR (REVIEW_MAX_BUNDLES; 0: no cap)
    max_mr_tokens: int = 0  # estimated tokens of all the MR's runs (REVIEW_MAX_TOKENS_PER_MR; 0: no cap)


@dataclass
class Bundle:
    files: list[ChangedFile] = field(default_factory=list)
    oversized: bool = False  # one file over a run's budget: the reviewer sees the first part of it

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def tokens(self) -> int:
        return sum(estimate_tokens(f) for f in self.files)

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]


@dataclass
class BundlePlan:
    bundles: list[Bundle]
    not_reviewed: list[FileCoverage] = field(default_factory=list)  # excluded, or left out by a cap
    notes: list[str] = field(default_factory=list)  # the caps that were hit, said in the summary

    @property
    def estimated_tokens(self) -> int:
        return sum(b.tokens + RUN_OVERHEAD_TOKENS for b in self.bundles)


def estimate_tokens(file: ChangedFile) -> int:
    return math.ceil((file.chars + len(file.path)) / CHARS_PER_TOKEN)


def diff_size(diff: str) -> tuple[int, int]:
    """(changed lines, characters) of one file's diff text as GitLab returns it (hunks only)."""
    lines = sum(1 for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++ ", "--- ")))
    return lines, len(diff)


def needs_bundles(files: Sequence[ChangedFile], limits: BundleLimits) -> bool:
    """Whether the reviewed files exceed what one run takes."""
    return sum(f.lines for f in files) > limits.max_lines or (
        sum(estimate_tokens(f) for f in files) > limits.max_tokens
    )


def excluded(
    files: Iterable[ChangedFile], exclude: Sequence[str]
) -> tuple[list[ChangedFile], list[FileCoverage]]:
    """(files to review, files never reviewed by REVIEW_EXCLUDE), with the sandbox's own wording."""
    keep: list[ChangedFile] = []
    left: list[FileCoverage] = []
    for f in files:
        pattern = next((p for p in exclude if path_matches(p, f.path)), None)
        if pattern:
            reason = f"excluded by REVIEW_EXCLUDE ({pattern})"[:300]
            left.append(FileCoverage(path=f.path[:1000], state="not_reviewed", reason=reason, excluded=True))
        else:
            keep.append(f)
    return keep, left


# --- grouping --------------------------------------------------------------------------------------
def is_test(path: str) -> bool:
    p = PurePosixPath(path)
    return any(part.lower() in _TEST_DIRS for part in p.parts[:-1]) or _TEST_NAME.match(p.stem) is not None


def subject(path: str) -> str:
    """What a file is about: `calc` for app/calc.py, tests/test_calc.py, calc_test.go, calc.spec.ts."""
    base = PurePosixPath(path).stem
    match = _TEST_NAME.match(base)
    if match:
        base = match.group("a") or match.group("b") or base
    return base.lower()


def _directory(path: str) -> str:
    parent = str(PurePosixPath(path).parent)
    return "" if parent == "." else parent


def group_related(files: Sequence[ChangedFile]) -> list[list[ChangedFile]]:
    """Groups of related files in path order: a directory's files, plus the tests of its code.

    Within a group a code file is followed by its tests, so a split group keeps them adjacent.
    """
    code_dirs: dict[str, str] = {}  # subject -> directory of the (first) code file about it
    for f in sorted(files, key=lambda f: f.path):
        if not is_test(f.path):
            code_dirs.setdefault(subject(f.path), _directory(f.path))
    groups: dict[str, list[ChangedFile]] = {}
    for f in files:
        key = _directory(f.path)
        if is_test(f.path) and subject(f.path) in code_dirs:
            key = code_dirs[subject(f.path)]
        groups.setdefault(key, []).append(f)
    return [
        sorted(members, key=lambda f: (subject(f.path), is_test(f.path), f.path))
        for _, members in sorted(groups.items())
    ]


# --- packing ---------------------------------------------------------------------------------------
def _fits(bundle: Bundle, extra: Sequence[ChangedFile], limits: BundleLimits) -> bool:
    return (
        bundle.lines + sum(f.lines for f in extra) <= limits.max_lines
        and bundle.tokens + sum(estimate_tokens(f) for f in extra) <= limits.max_tokens
    )


def _units(group: list[ChangedFile]) -> list[list[ChangedFile]]:
    """A code file with its tests, or a lone file: what a split keeps together."""
    units: list[list[ChangedFile]] = []
    for f in group:
        if units and subject(units[-1][0].path) == subject(f.path):
            units[-1].append(f)
        else:
            units.append([f])
    return units


def pack(files: Sequence[ChangedFile], limits: BundleLimits) -> list[Bundle]:
    bundles: list[Bundle] = []
    current = Bundle()

    def close() -> None:
        nonlocal current
        if current.files:
            bundles.append(current)
        current = Bundle()

    def add(unit: Sequence[ChangedFile]) -> None:
        if not _fits(current, unit, limits):
            close()
        for f in unit:
            if _fits(current, [f], limits):
                current.files.append(f)
            elif not current.files:
                bundles.append(Bundle([f], oversized=True))  # alone, and still too big: in part
            else:
                close()
                if _fits(current, [f], limits):
                    current.files.append(f)
                else:
                    bundles.append(Bundle([f], oversized=True))

    for group in group_related(files):
        if _fits(current, group, limits):
            current.files.extend(group)
            continue
        close()
        for unit in _units(group):
            add(unit)
    close()
    return bundles


def plan_bundles(files: Sequence[ChangedFile], exclude: Sequence[str], limits: BundleLimits) -> BundlePlan:
    """The bundles of a review, and every file no bundle takes with the reason."""
    reviewable, left_out = excluded(files, exclude)
    bundles = pack(reviewable, limits)
    plan = BundlePlan(bundles=[], not_reviewed=left_out)
    total = len(bundles)
    spent = 0
    for number, bundle in enumerate(bundles, start=1):
        if limits.max_bundles and len(plan.bundles) >= limits.max_bundles:
            plan.notes.append(
                f"This merge request needs {total} review bundles; REVIEW_MAX_BUNDLES={limits.max_bundles} "
                f"allows {limits.max_bundles}, so {total - number + 1} bundle(s) were not reviewed"
            )
            plan.not_reviewed += _left(bundles[number - 1 :], f"over REVIEW_MAX_BUNDLES={limits.max_bundles}")
            break
        cost = bundle.tokens + RUN_OVERHEAD_TOKENS
        if limits.max_mr_tokens and spent + cost > limits.max_mr_tokens:
            plan.notes.append(
                f"The review of this merge request was estimated at {spent + sum(b.tokens + RUN_OVERHEAD_TOKENS for b in bundles[number - 1 :])} "
                f"model tokens; REVIEW_MAX_TOKENS_PER_MR={limits.max_mr_tokens}, so {total - number + 1} "
                "bundle(s) were not reviewed"
            )
            plan.not_reviewed += _left(
                bundles[number - 1 :], f"over REVIEW_MAX_TOKENS_PER_MR={limits.max_mr_tokens}"
            )
            break
        spent += cost
        plan.bundles.append(bundle)
    return plan


def _left(bundles: Iterable[Bundle], reason: str) -> list[FileCoverage]:
    return [
        FileCoverage(path=f.path[:1000], state="not_reviewed", reason=reason)
        for b in bundles
        for f in b.files
    ]


# --- putting results together ----------------------------------------------------------------------
# Reasons of the diff selection (executors/review_diff.py) that are configuration or the file's
# nature, not a budget the review ran out of: listed, but the review is still complete.
BY_DESIGN = ("excluded by ", "binary file")


def run_coverage(
    reviewed: Iterable[str],
    skipped: Iterable[tuple[str, str]],
    partial: Iterable[tuple[str, str]],
    expected: Iterable[str] = (),
) -> Coverage:
    """One run's coverage from its diff scope; `expected` files (its bundle's) that it did not see
    at all are listed as not reviewed, never assumed reviewed."""
    lines: dict[str, FileCoverage] = {}
    for path in reviewed:
        lines[path] = FileCoverage(path=path[:1000], state="reviewed")
    for path, reason in partial:
        lines[path] = FileCoverage(path=path[:1000], state="partly", reason=reason[:300])
    for path, reason in skipped:
        lines.setdefault(
            path,
            FileCoverage(
                path=path[:1000],
                state="not_reviewed",
                reason=reason[:300],
                excluded=reason.startswith(BY_DESIGN),
            ),
        )
    for path in expected:
        lines.setdefault(
            path,
            FileCoverage(
                path=path[:1000],
                state="not_reviewed",
                reason="not in the diff the reviewer computed for this commit",
            ),
        )
    return Coverage.of(lines.values())


def failed_coverage(paths: Iterable[str], reason: str) -> Coverage:
    return Coverage.of(FileCoverage(path=p[:1000], state="not_reviewed", reason=reason[:300]) for p in paths)


def _finding_key(f: Finding) -> tuple[str, int, str, str]:
    return (f.file, f.line, f.side, normalise_text(f.title))


def merge_runs(
    runs: Sequence[ReviewRunResult | None],
    coverage: Coverage,
    notes: Sequence[str],
) -> ReviewRunResult:
    """One result from the bundles' results (None: a bundle that delivered nothing), for one
    publication: findings deduplicated across bundles (a file one bundle viewed for context may be
    remarked on by two) and capped at MAX_FINDINGS_PER_MR, most severe first, with the cap said."""
    done = [r for r in runs if r is not None]
    findings: list[Finding] = []
    seen: set[tuple[str, int, str, str]] = set()
    for run in done:
        for f in run.findings:
            key = _finding_key(f)
            if key not in seen:
                seen.add(key)
                findings.append(f)
    notes = list(notes)
    if len(findings) > MAX_FINDINGS_PER_MR:
        ranked = sorted(range(len(findings)), key=lambda i: (_SEVERITY_RANK.get(findings[i].severity, 9), i))
        keep = sorted(ranked[:MAX_FINDINGS_PER_MR])
        notes.append(
            f"The bundles reported {len(findings)} findings; the {MAX_FINDINGS_PER_MR} most severe "
            f"are posted and {len(findings) - MAX_FINDINGS_PER_MR} of lower severity are not"
        )
        findings = [findings[i] for i in keep]
    resolutions: dict[str, Resolution] = {}
    for run in done:
        for r in run.resolutions:
            # Only the bundle that was shown a thread judges it; should two, "resolved" needs both.
            earlier = resolutions.get(r.thread_id)
            if earlier is None or (earlier.status == "resolved" and r.status != "resolved"):
                resolutions[r.thread_id] = r
    summaries = [r.summary.strip() for r in done if r.summary.strip()]
    first = done[0] if done else ReviewRunResult()
    return ReviewRunResult(
        findings=findings,
        resolutions=list(resolutions.values())[:200],
        summary="\n\n".join(summaries)[:4000],
        reviewed_from_sha=first.reviewed_from_sha,
        full_review_reason=next((r.full_review_reason for r in done if r.full_review_reason), ""),
        skipped_files=[f"{c.path}: {c.reason}" for c in coverage.files if c.state == "not_reviewed"][:500],
        reviewed_files=sum(1 for c in coverage.files if c.state != "not_reviewed"),
        prompt_chars=sum(r.prompt_chars for r in done),
        prompt_tokens=sum(r.prompt_tokens or 0 for r in done) or None,
        tokens_used=sum(r.tokens_used for r in done),
        coverage=coverage,
        coverage_notes=notes[:50],
        bundles=len(runs),
    )


# --- from a plan to the bundles' tasks -------------------------------------------------------------
def planned(plan: BundlePlan) -> list[PlannedBundle]:
    return [
        PlannedBundle(files=b.paths, lines=b.lines, tokens=b.tokens, oversized=b.oversized)
        for b in plan.bundles
    ]


def bundle_task(
    task: ReviewTask, bundle: PlannedBundle, index: int, count: int, open_thread_ids: Sequence[str]
) -> tuple[ReviewTask, list[str]]:
    """The review task of bundle `index` (0-based) of `count`, and the open threads it may judge.

    A bundle is shown the earlier threads on its own files; threads on no file (general notes)
    go to the first bundle only, so each earlier thread is judged once."""
    files = set(bundle.files)

    def mine(file: str | None) -> bool:
        return file in files if file else index == 0

    threads = [t for t in task.prior_threads if mine(t.file)]
    note = (
        f"this is bundle {index + 1} of {count} of a large merge request: review only the "
        f"{len(bundle.files)} file(s) in the diff below; the other changed files are reviewed in "
        "separate runs (you may view them for context)"
    )
    narrowed = task.model_copy(
        update={
            "files": list(bundle.files),
            "bundle_note": note,
            "prior_threads": threads,
            "dismissed": [d for d in task.dismissed if not d.file or d.file in files],
        }
    )
    wanted = {t.thread_id for t in threads}
    return narrowed, [t for t in open_thread_ids if t in wanted]
