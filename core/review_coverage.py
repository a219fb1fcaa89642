"""The coverage part of the summary note: every changed file reviewed, partly reviewed or not,
with the reason, and the per-MR caps or failed bundles of a review in bundles. Pure. A review that
left files out never reads as a clean one."""

from __future__ import annotations

from contracts.delivery import Coverage
from contracts.models import ReviewRunResult
from core.outbound_text import code_span, one_line

MAX_ROWS = 500  # files listed one per row; the rest are counted
_LABEL = {"reviewed": "reviewed", "partly": "partly reviewed", "not_reviewed": "not reviewed"}
_ORDER = {"not_reviewed": 0, "partly": 1, "reviewed": 2}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_coverage(run: ReviewRunResult) -> str:
    """The summary's coverage section ("" when the run reported no per-file coverage)."""
    coverage: Coverage | None = run.coverage
    if coverage is None or not (coverage.files or coverage.omitted):
        return ""
    files = coverage.files
    reviewed = sum(1 for c in files if c.state == "reviewed")
    partly = sum(1 for c in files if c.state == "partly")
    missing = len(files) - reviewed - partly + coverage.omitted
    how = f" in {run.bundles} bundles (one agent run each)" if run.bundles else ""
    parts = [
        f"**Coverage{how}:** {reviewed} of {len(files) + coverage.omitted} changed files reviewed, "
        f"{partly} partly reviewed, {missing} not reviewed."
    ]
    gaps = len(coverage.gaps) + coverage.omitted
    if gaps:
        parts.append(
            f":warning: **This review is incomplete**: {gaps} file(s) were not fully reviewed, so no "
            "finding on them does not mean they are fine."
        )
    parts += [f"- {one_line(note, 400)}" for note in run.coverage_notes]
    rows = ["| File | Coverage |", "|---|---|"]
    ordered = sorted(files, key=lambda c: (_ORDER[c.state], c.path))
    for line in ordered[:MAX_ROWS]:
        status = _LABEL[line.state] + (f": {one_line(line.reason, 300)}" if line.reason else "")
        rows.append(f"| {_cell(code_span(line.path))} | {_cell(status)} |")
    more = len(ordered) - MAX_ROWS + coverage.omitted
    if more > 0:
        rows.append(f"| … and {more} more | |")
    open_attr = " open" if gaps and len(files) <= 50 else ""
    parts.append(
        f"<details{open_attr}><summary>Files ({len(files) + coverage.omitted})</summary>\n\n"
        + "\n".join(rows)
        + "\n\n</details>"
    )
    return "\n\n".join(parts)
