"""Workflow inputs and results, and the values activities hand each other.

Everything here travels through Temporal history and the Web UI, so it is small JSON and never a
secret: references (project, MR IID, SHAs) instead of diffs or file contents, and bounded lists.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.agent_tasks import ReviewTask
from contracts.coverage import MAX_PLANNED_FILES, PlannedBundle
from contracts.delivery import MAX_UNDELIVERED, Coverage, FileCoverage, StatusUpdate, Undelivered
from contracts.ledger import Category, Learning, Ledger

MAX_FINDINGS = 50  # of one agent run
MAX_FINDINGS_PER_MR = 100  # of a review in bundles, merged (core/review_bundles.py says what it cut)
MAX_BODY_CHARS = 4000


class Trigger(StrEnum):
    WEBHOOK = "webhook"
    POLLER = "poller"
    MANUAL = "manual"
    DISCUSSION = "discussion"
    IMPLEMENT = "implement"  # ImplementIssue reviewing its own draft MR (the reviewer ↔ implementer loop)


class _Model(BaseModel):
    # Unknown fields are refused so a typo in `temporal workflow start --input` fails loudly.
    model_config = ConfigDict(extra="forbid")


# --- ReviewMR ---------------------------------------------------------------------------------------
class ReviewMRInput(_Model):
    project_id: int = Field(gt=0)
    mr_iid: int = Field(gt=0)
    head_sha: str | None = Field(None, pattern=r"^[0-9a-f]{7,64}$", description="Looked up when omitted")
    trigger: Trigger = Trigger.MANUAL


Severity = Literal["critical", "major", "minor", "info"]


class Finding(_Model):
    file: str = Field(min_length=1, max_length=1000)
    line: int = Field(ge=1)
    end_line: int | None = Field(None, ge=1)
    side: Literal["new", "old"] = "new"
    severity: Severity = "minor"
    title: str = Field(min_length=1, max_length=300)
    body: str = Field("", max_length=MAX_BODY_CHARS)
    suggestion: str | None = Field(None, max_length=20_000)
    category: Category = "other"


ResolutionStatus = Literal["resolved", "partial", "not_addressed"]


class Resolution(_Model):
    thread_id: str = Field(min_length=1, max_length=100)
    status: ResolutionStatus
    reply: str = Field("", max_length=MAX_BODY_CHARS)


class MRInfo(_Model):
    """What the workflow needs to know about an MR to decide; no description or diff."""

    project_id: int
    mr_iid: int
    title: str
    state: str
    draft: bool
    head_sha: str
    base_sha: str
    start_sha: str
    source_branch: str
    target_branch: str
    source_project_id: int
    author_username: str
    web_url: str


class ReviewRunInput(_Model):
    project_id: int
    mr_iid: int
    head_sha: str
    workflow_id: str


class ReviewPrep(_Model):
    """What the reviewer needs, read from GitLab in its own activity: GitLab hiccups are retried on
    GitLab's retry policy there, and never use up the (few, costly) attempts of the agent run."""

    superseded: bool = False
    task: ReviewTask | None = None
    open_thread_ids: list[str] = Field(default_factory=list, max_length=100)
    last_reviewed_sha: str | None = None
    # A diff over one run's budget is reviewed in bundles (core/review_bundles.py): their files, and
    # the files no bundle takes (excluded, over a per-MR cap) with the reason. [] : one run.
    bundles: list[PlannedBundle] = Field(default_factory=list, max_length=1000)
    not_reviewed: list[FileCoverage] = Field(default_factory=list, max_length=MAX_PLANNED_FILES)
    plan_notes: list[str] = Field(default_factory=list, max_length=20)


class ReviewRunResult(_Model):
    findings: list[Finding] = Field(default_factory=list, max_length=MAX_FINDINGS_PER_MR)
    resolutions: list[Resolution] = Field(default_factory=list, max_length=200)
    summary: str = Field("", max_length=MAX_BODY_CHARS)
    reviewed_from_sha: str | None = None  # set for incremental reviews
    full_review_reason: str = ""  # why a full review was done when an earlier one existed
    skipped_files: list[str] = Field(default_factory=list, max_length=500)
    reviewed_files: int = 0
    # Per file: reviewed, partly or not reviewed, with the reason (what the run's diff budget
    # included; a fan-out over bundles merges its children's). None from a run before coverage.
    coverage: Coverage | None = None
    nothing_to_review: bool = False
    superseded: bool = False  # the MR moved on before the agent ran
    prompt_chars: int = 0
    prompt_tokens: int | None = None
    tokens_used: int = 0  # prompt + completion tokens of the run: the project's daily token budget
    # A review in bundles: which per-MR cap was hit, which bundle failed (said in the summary).
    coverage_notes: list[str] = Field(default_factory=list, max_length=50)
    bundles: int = 0  # agent runs this review was split into (0: one run, no bundles)


class PostReviewInput(_Model):
    project_id: int
    mr_iid: int
    head_sha: str
    workflow_id: str
    run: ReviewRunResult


class PostReviewResult(_Model):
    """What the review delivered, across all attempts of post_review: `inline` and `fallback` count
    every finding of this review on the MR, whichever attempt posted it; `already_posted` says how
    many of them an earlier attempt had posted."""

    superseded: bool = False
    inline: int = 0
    fallback: int = 0
    rejected_positions: int = 0  # by this attempt
    duplicates_dropped: int = 0
    already_posted: int = 0
    resolved: int = 0
    partial: int = 0
    # The receipt: replies posted in the agent's threads, threads it resolved, what did not reach
    # the MR and why, how it was published, and the commit status the review should end with.
    critical: int = 0  # delivered findings of severity critical
    replies: int = 0
    threads_resolved: int = 0
    not_delivered: list[Undelivered] = Field(default_factory=list, max_length=MAX_UNDELIVERED)
    published: Literal["drafts", "direct", ""] = ""  # one batch of draft notes, or thread by thread
    summary_url: str = ""
    status: StatusUpdate | None = None
    # The finding ledger after this review (the `ledger` query of ReviewMR) and the project notes
    # its rebuttals taught (recorded in the project's ProjectLearnings workflow).
    ledger: Ledger | None = None
    learned: list[Learning] = Field(default_factory=list, max_length=20)


class ReviewStatusInput(_Model):
    """The `copilot-review` commit status to set on the head a review is about."""

    project_id: int
    mr_iid: int
    head_sha: str
    update: StatusUpdate
    only_if_running: bool = False  # end the review's own running status; leave a finished one be
    repeat_previous: bool = False  # nothing new was reviewed: end as the previous review did


class ReviewMRResult(_Model):
    status: Literal["posted", "skipped", "superseded", "failed", "ignored", "limited"]
    reason: str = ""
    head_sha: str = ""
    posted: PostReviewResult | None = None


class ReviewProgress(_Model):
    step: str
    head_sha: str = ""
    findings: int = 0
    inline: int = 0
    fallback: int = 0


class CheckResult(_Model):
    name: str
    ok: bool
    detail: str = ""


class DiagnoseResult(_Model):
    version: str
    task_executor: str
    checks: list[CheckResult]
