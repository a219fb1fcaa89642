"""Review delivery, the pure parts: range notes, the receipt, coverage, the commit status."""

from __future__ import annotations

import contextvars
import threading
import time
from functools import partial

import pytest

from activities.gitlab_writes import compose
from activities.review_publish import side_by_side
from contracts.delivery import Coverage, FileCoverage, Undelivered
from contracts.models import Finding, PostReviewInput, PostReviewResult, ReviewRunResult
from core.review_memory import read_memory
from core.review_post import plan_findings, render_finding, render_summary
from core.review_receipt import final_status

AGENT = 99
HEAD = "b" * 40
REFS = {"base_sha": "a" * 40, "start_sha": "a" * 40, "head_sha": HEAD}
# Two hunks of app.py: new lines 1-4 and 20-23; lines 5-19 are the gap between them.
DIFF = "@@ -1,3 +1,4 @@\n a1\n-a2\n+b2\n+b3\n a3\n@@ -19,3 +20,4 @@\n c20\n+d21\n c21\n c22\n"
CHANGES = [
    {"old_path": "app.py", "new_path": "app.py", "new_file": False, "renamed_file": False, "deleted_file": False,
     "diff": DIFF}
]  # fmt: skip


def plan_one(finding: Finding):
    (item,) = plan_findings([finding], CHANGES, REFS, read_memory([], AGENT, HEAD), HEAD).to_post
    return item


# --- defects: ranges ------------------------------------------------------------------------------
def test_a_range_across_a_hunk_gap_says_which_lines_it_covers_and_why_it_sits_on_one():
    item = plan_one(Finding(file="app.py", line=2, end_line=21, title="Spans both hunks"))
    assert item.position is not None and item.position["new_line"] == 2 and "line_range" not in item.position
    body = compose(*render_finding(item, HEAD))
    assert "Covers lines 2-21 of `app.py`; anchored on line 2 only" in body
    assert "not all in one hunk" in body


def test_a_range_inside_one_hunk_needs_no_note():
    item = plan_one(Finding(file="app.py", line=2, end_line=3, title="Within one hunk"))
    assert item.position["line_range"] is not None
    assert "Covers lines" not in compose(*render_finding(item, HEAD))


def test_the_fallback_note_for_a_range_keeps_the_range_inside_the_code_span():
    item = plan_one(Finding(file="app.py", line=40, end_line=42, title="Far away"))
    body = compose(*render_finding(item, HEAD))
    assert "`app.py:40-42`" in body and "`app.py:40`-42" not in body
    single = compose(*render_finding(plan_one(Finding(file="app.py", line=40, end_line=40, title="X")), HEAD))
    assert "`app.py:40`" in single and "40-40" not in single


# --- the commit status ----------------------------------------------------------------------------
FILES = [FileCoverage(path=f"f{i}.py", state="reviewed") for i in range(40)]
FULL = Coverage(files=FILES)
LOCK = FileCoverage(path="poetry.lock", state="not_reviewed", reason="excluded", excluded=True)


def test_status_success_says_findings_critical_and_files():
    status = final_status(
        PostReviewResult(inline=4, fallback=1, critical=2),
        Coverage(files=[*FILES, LOCK]),
        fail_on_critical=False,
    )
    # an excluded lockfile is listed in the summary but is no gap and not counted
    assert (status.state, status.description) == ("success", "5 findings, 2 critical · 40/40 files")


def test_status_fails_when_something_was_not_delivered():
    result = PostReviewResult(inline=1, not_delivered=[Undelivered(what="finding `a.py:3`", reason="gone")])
    status = final_status(result, FULL, fail_on_critical=False)
    assert status.state == "failed" and "1 not delivered" in status.description


def test_status_fails_when_coverage_is_incomplete_even_with_nothing_found():
    partial = Coverage(
        files=[*FILES[:39], FileCoverage(path="big.py", state="not_reviewed", reason="over the budget")]
    )
    status = final_status(PostReviewResult(), partial, fail_on_critical=False)
    assert (
        status.state == "failed" and "39/40 files" in status.description and "partial" in status.description
    )


def test_critical_findings_fail_the_status_only_when_the_project_asks():
    result = PostReviewResult(inline=1, critical=1)
    assert final_status(result, FULL, fail_on_critical=False).state == "success"
    assert final_status(result, FULL, fail_on_critical=True).state == "failed"


# --- the receipt ----------------------------------------------------------------------------------
def test_the_summary_carries_a_receipt_with_what_was_and_was_not_delivered():
    run = ReviewRunResult(findings=[], coverage=FULL, reviewed_files=40)
    data = PostReviewInput(project_id=1, mr_iid=2, head_sha=HEAD, workflow_id="review:1:2:abc", run=run)
    result = PostReviewResult(
        inline=3, fallback=1, replies=2, threads_resolved=1, published="drafts",
        not_delivered=[Undelivered(what="finding `a.py:9`", reason="not visible on the MR after publishing")],
    )  # fmt: skip
    text, _ = render_summary(data, result, read_memory([], AGENT, HEAD))
    assert "Delivered (published as one review): 3 inline, 1 general, 2 replies, 1 threads resolved" in text
    assert "**Not delivered (1)**" in text and "`a.py:9`: not visible on the MR after publishing" in text
    assert "- Coverage: 40/40 files reviewed" in text and "Workflow: `review:1:2:abc`" in text


# --- drafts side by side ---------------------------------------------------------------------------
def test_drafts_side_by_side_keep_their_order_and_the_callers_context():
    seen = contextvars.ContextVar("seen", default="none")
    seen.set("activity")
    gate = threading.Barrier(3)  # three calls run at the same time, or this waits forever

    def call(n: int) -> tuple[int, str]:
        if n < 3:
            gate.wait(timeout=5)
        return n, seen.get()

    results = side_by_side([partial(call, n) for n in range(6)], workers=3)
    assert results == [(n, "activity") for n in range(6)]


def test_a_failed_draft_stops_the_ones_not_started_and_waits_for_the_running_ones():
    started, finished = [], []

    def call(n: int) -> int:
        started.append(n)
        if n == 0:
            raise RuntimeError("GitLab said no")
        time.sleep(0.05)
        finished.append(n)
        return n

    with pytest.raises(RuntimeError, match="GitLab said no"):
        side_by_side([partial(call, n) for n in range(50)], workers=2)
    assert sorted(finished) == sorted(n for n in started if n != 0)  # nothing left in flight
    assert len(started) < 50  # the rest were never sent
