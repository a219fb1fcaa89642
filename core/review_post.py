"""From reported findings to what is posted: positions, repeats dropped, note bodies. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.models import Finding, PostReviewInput, PostReviewResult
from core import markers
from core.diff_positions import DiffIndex, DiffParseError, resolve
from core.fingerprint import fingerprint, normalise_text, similar
from core.outbound_text import code_span, model_text, one_line
from core.review_coverage import render_coverage
from core.review_memory import OwnThread, ReviewMemory
from core.review_receipt import render_receipt
from core.suggestions import suggestion_markdown

NEAR_LINES = 3
_MARKER_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-")


@dataclass(frozen=True)
class PlannedFinding:
    finding: Finding
    fingerprint: str
    position: dict[str, Any] | None
    fallback_reason: str = ""
    suggestion: str | None = None
    range_note: str = ""  # why a multi-line finding is anchored on its first line only

    def as_fallback(self, reason: str) -> PlannedFinding:
        return dataclasses.replace(self, position=None, fallback_reason=reason, suggestion=None)


@dataclass
class FindingPlan:
    to_post: list[PlannedFinding]
    duplicates: int = 0
    already_posted: int = 0
    # Findings of this very review (same head SHA) an earlier attempt posted: they count as
    # delivered by this review, so a retried attempt's receipt matches what is on the MR.
    earlier: list[OwnThread] = dataclasses.field(default_factory=list)
    earlier_critical: int = 0  # of those, how many are critical


def _code_at(index: DiffIndex | None, finding: Finding) -> str:
    target = index.find(finding.file) if index else None
    if target is None:
        return ""
    side = "old" if finding.side == "old" or target.deleted_file else "new"
    end = finding.end_line or finding.line
    lines = [target.find_line(side, n) for n in range(finding.line, min(end, finding.line + 50) + 1)]
    return "\n".join(line.text for line in lines if line is not None)


def _near_existing(finding: Finding, memory: ReviewMemory) -> bool:
    """The same remark on (nearly) the same place as a thread that is open or was dismissed."""
    title = normalise_text(finding.title)
    for thread in memory.own_threads:
        if thread.resolved_by_agent or (thread.file or "") != finding.file:
            continue
        close = thread.line is None or abs(thread.line - finding.line) <= NEAR_LINES
        if close and similar(title, normalise_text(thread.title), threshold=0.75):
            return True
    return False


def plan_findings(
    findings: Sequence[Finding],
    changes: Sequence[Mapping[str, Any]],
    diff_refs: Mapping[str, Any],
    memory: ReviewMemory,
    head_sha: str,
) -> FindingPlan:
    try:
        index: DiffIndex | None = DiffIndex.from_changes(changes, diff_refs)
    except (DiffParseError, ValueError):
        index = None  # every finding becomes a general note, none is lost
    existing = memory.fingerprints
    plan = FindingPlan(to_post=[])
    batch: set[str] = set()
    for finding in findings:
        fp = fingerprint(finding.file, finding.title, _code_at(index, finding))
        if fp in existing:
            if existing[fp].reviewed_sha == head_sha:
                plan.already_posted += 1  # a retried attempt of this very review posted it
                plan.earlier.append(existing[fp])
                plan.earlier_critical += finding.severity == "critical"
            else:
                plan.duplicates += 1
            continue
        if fp in batch or _near_existing(finding, memory):
            plan.duplicates += 1
            continue
        batch.add(fp)
        if index is None:
            plan.to_post.append(
                PlannedFinding(finding, fp, None, "the merge request's diff could not be read")
            )
            continue
        location = resolve(index, finding.file, finding.line, finding.side, finding.end_line)
        if location.position is None:
            plan.to_post.append(PlannedFinding(finding, fp, None, location.reason))
            continue
        suggestion = None
        if finding.suggestion is not None:
            end = finding.end_line or finding.line
            suggestion = suggestion_markdown(location.position, finding.line, end, finding.suggestion)
        plan.to_post.append(
            PlannedFinding(
                finding,
                fp,
                location.position.to_gitlab(),
                suggestion=suggestion,
                range_note=location.range_note,
            )
        )
    return plan


def render_finding(item: PlannedFinding, head_sha: str) -> tuple[str, str]:
    """(text, marker) of a finding's thread."""
    finding = item.finding
    parts = [f"**[{finding.severity}]** {one_line(finding.title)}"]
    lines = f"{finding.line}-{finding.end_line}" if spans_lines(finding) else str(finding.line)
    if item.position is None:
        where = code_span(f"{finding.file}:{lines}")
        parts.append(f"_On {where} (posted here because: {item.fallback_reason})._")
    elif item.range_note and spans_lines(finding):
        # The range crosses a gap between hunks (or is otherwise not one GitLab line_range): the
        # comment sits on its first line, and says so instead of silently covering less.
        parts.append(
            f"_Covers lines {lines} of {code_span(finding.file)}; anchored on line {finding.line} only, "
            "because those lines are not all in one hunk of the diff and GitLab anchors a comment "
            "within one hunk._"
        )
    if finding.body:
        parts.append(model_text(finding.body))
    if item.suggestion:
        parts.append(item.suggestion)
    elif finding.suggestion and item.position is None:
        parts.append("Suggested replacement:\n\n```\n" + finding.suggestion.replace("```", "ʼʼʼ") + "\n```")
    values = {
        "fp": item.fingerprint,
        "sha": head_sha,
        "sev": finding.severity,
        "cat": finding.category,
        "line": str(finding.line),
    }
    if set(finding.file) <= _MARKER_SAFE and len(finding.file) <= 200:
        values["file"] = finding.file
    return "\n\n".join(parts), markers.marker(markers.FINDING, **values)


def spans_lines(finding: Finding) -> bool:
    return finding.end_line is not None and finding.end_line > finding.line


def render_summary(data: PostReviewInput, result: PostReviewResult, memory: ReviewMemory) -> tuple[str, str]:
    """(text, marker) of the summary note."""
    run = data.run
    head = data.head_sha
    if run.reviewed_from_sha:
        scope = f"Incremental review of the commits since {run.reviewed_from_sha[:8]}, up to {head[:8]}."
    else:
        scope = f"Full review at {head[:8]}."
        if run.full_review_reason:
            scope += f" {run.full_review_reason[0].upper()}{run.full_review_reason[1:]}."
    new = result.inline + result.fallback
    rows = [
        "| | |",
        "|---|---|",
        f"| New findings | {new} ({result.inline} inline, {result.fallback} as general comments) |",
        # "verified fixed", not "resolved": under RESOLUTION_BEHAVIOR=suggest or off the thread stays
        # open for a human; the receipt says how many threads the agent actually resolved.
        f"| Earlier threads verified fixed | {result.resolved} |",
        f"| Earlier threads partly addressed | {result.partial} |",
        f"| Repeats not posted again | {result.duplicates_dropped} |",
        f"| Files reviewed | {run.reviewed_files} |",
        f"| Files not reviewed | {len(run.skipped_files)} |",
    ]
    parts = ["### Copilot review", scope]
    if run.summary:
        parts.append(model_text(run.summary))
    parts.append("\n".join(rows))
    if coverage := render_coverage(run):  # per file, with the reasons (core/review_coverage.py)
        parts.append(coverage)
    elif run.skipped_files:
        listing = "\n".join(f"- {_skipped(line)}" for line in run.skipped_files)
        parts.append(
            f"<details><summary>Files not reviewed ({len(run.skipped_files)})</summary>\n\n{listing}\n\n</details>"
        )
    open_left = len(memory.open_threads) - result.resolved
    if open_left > 0:
        parts.append(f"{open_left} earlier thread(s) of this review remain open.")
    parts.append(render_receipt(result, run.coverage, data.workflow_id))
    return "\n\n".join(parts), markers.marker(markers.SUMMARY, last_reviewed_sha=head)


def _skipped(entry: str) -> str:
    """One "Files not reviewed" line: the path (from the MR's repository, so it may hold newlines
    and a `/approve`) as a code span, then the service's reason. Entries are `<path>: <reason>`."""
    path, sep, reason = entry.rpartition(": ")
    if not sep:
        return code_span(entry)
    return f"{code_span(path)}: {one_line(reason, 200)}"
