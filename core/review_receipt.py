"""What a review says about itself: the receipt in the summary, and the commit status. Pure.

The commit status tells the truth (docs/adr/0022-review-delivery.md): `success` only when every
finding reached the MR and every file in scope was reviewed; `failed` when anything could not be
delivered or the coverage has gaps (contracts/delivery.py: files excluded by configuration are no
gap), and, when a project asks for it, when there are critical findings. The description says
how many findings, how many critical, and how many files.
"""

from __future__ import annotations

from contracts.delivery import Coverage, StatusUpdate
from contracts.models import PostReviewResult
from core.outbound_text import code_span, one_line


def files_phrase(coverage: Coverage | None) -> str:
    """`40/40 files`: reviewed in full / in scope (files excluded by configuration not counted)."""
    return f"{coverage.reviewed}/{coverage.total} files" if coverage is not None and coverage.total else ""


def final_status(
    result: PostReviewResult,
    coverage: Coverage | None,
    *,
    fail_on_critical: bool,
    target_url: str = "",
) -> StatusUpdate:
    delivered = result.inline + result.fallback
    parts = [f"{delivered} finding{'' if delivered == 1 else 's'}, {result.critical} critical"]
    if files := files_phrase(coverage):
        parts.append(files)
    missing = len(result.not_delivered)
    if missing:
        parts.append(f"{missing} not delivered")
    state = "success"
    if missing:
        state = "failed"  # a review that could not say everything is not a pass
    elif coverage is not None and not coverage.complete:
        parts.append("partial review")
        state = "failed"
    elif fail_on_critical and result.critical:
        state = "failed"
    return StatusUpdate(state=state, description=" · ".join(parts)[:255], target_url=target_url)


def render_receipt(result: PostReviewResult, coverage: Coverage | None, workflow_id: str) -> str:
    """The receipt block of the summary note: delivered, not delivered and why, coverage, run."""
    how = {"drafts": "published as one review", "direct": "posted thread by thread"}.get(result.published, "")
    lines = [
        "<details><summary>Receipt</summary>",
        "",
        f"- Delivered{f' ({how})' if how else ''}: {result.inline} inline, {result.fallback} general, "
        f"{result.replies} replies, {result.threads_resolved} threads resolved",
    ]
    if result.not_delivered:
        lines.append(f"- **Not delivered ({len(result.not_delivered)})**:")
        lines += [f"  - {one_line(u.what, 300)}: {one_line(u.reason, 300)}" for u in result.not_delivered]
    else:
        lines.append("- Not delivered: nothing")
    if coverage is not None and (files := files_phrase(coverage)):
        holes = len(coverage.gaps) + coverage.omitted
        lines.append(f"- Coverage: {files} reviewed" + (f", {holes} partly or not reviewed" if holes else ""))
    lines += [f"- Workflow: {code_span(workflow_id)}", "", "</details>"]
    return "\n".join(lines)
