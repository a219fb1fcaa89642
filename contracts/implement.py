"""Inputs and results of ImplementIssue and of the two polling workflows.

All of it travels through Temporal history and the Web UI: small, bounded, secret-free. The patch and
the repository never appear here; the implement activity keeps them inside itself and hands back the
pushed branch and commit (references) plus bounded text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.agent_tasks import OpenFinding, TestEvidence
from contracts.models import Trigger

JIRA_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*-\d+$"
MAX_SUMMARY_CHARS = 4000
MAX_PLAN_CHARS = 8000
MAX_FEEDBACK_CHARS = 4000


class _Model(BaseModel):
    # Unknown fields are refused so a typo in `temporal workflow start --input` fails loudly.
    model_config = ConfigDict(extra="forbid")


# --- ImplementIssue ---------------------------------------------------------------------------------
class PlanState(_Model):
    """Where a plan wait stands; carried across continue-as-new (a wait can last days)."""

    round: int = Field(1, ge=1)
    plan: str = Field("", max_length=MAX_PLAN_CHARS)  # markdown, as posted on the issue
    posted_at: datetime  # when the current round's plan comment was posted (workflow time)
    reminded: bool = False
    tokens_used: int = 0  # the plan rounds' tokens (the implementation adds its own)


class ImplementIssueInput(_Model):
    issue_key: str = Field(pattern=JIRA_KEY_PATTERN, max_length=64)
    trigger: Trigger = Trigger.MANUAL
    resume: PlanState | None = Field(None, description="Set by continue-as-new while a plan waits")


class PlanPolicy(_Model):
    """The worker's plan-approval settings for this issue (settings live in the worker)."""

    required: bool
    reason: str = ""  # why approval is (not) needed, e.g. "PLAN_APPROVAL=off" or "label quick-fix"
    poll_s: int = 300
    reminder_s: int = 86400
    expire_s: int = 604800
    max_rounds: int = 3
    polls_per_run: int = 500
    how_to_approve: str = Field("", max_length=1000)


class PlanRunInput(_Model):
    issue_key: str = Field(pattern=JIRA_KEY_PATTERN)
    workflow_id: str
    run_id: str
    round: int = Field(1, ge=1)
    previous_plan: str = Field("", max_length=MAX_PLAN_CHARS)
    feedback: str = Field("", max_length=MAX_FEEDBACK_CHARS)


class PlanRunResult(_Model):
    plan: str = Field(max_length=MAX_PLAN_CHARS)  # markdown: approach, files, tests, risks, questions
    tokens_used: int = 0


class PlanDecision(_Model):
    kind: Literal["approve", "changes", "none", "expired"]
    by: str = Field("", max_length=200)  # who decided (Jira user, or the operator named in a signal)
    via: Literal["", "comment", "label", "status", "signal"] = ""
    feedback: str = Field("", max_length=MAX_FEEDBACK_CHARS)
    ignored: list[str] = Field(default_factory=list, max_length=20)  # decisions from users who may not


class PlanSignal(_Model):
    """`temporal workflow signal --name approve_plan|request_plan_changes --input '{"by": "..."}'`."""

    by: str = Field(min_length=1, max_length=200)
    feedback: str = Field("", max_length=MAX_FEEDBACK_CHARS)


StatusRole = Literal["in_progress", "in_review"]


class IssueInfo(_Model):
    """What the workflow needs to know about the issue to decide; the description stays in activities."""

    key: str
    project_key: str
    summary: str = Field(max_length=1000)
    status: str
    repo: str
    target_branch: str
    gitlab_project_id: int  # for the per-project agent slots shared with reviews and discussions


class ImplementRunInput(_Model):
    issue_key: str = Field(pattern=JIRA_KEY_PATTERN)
    workflow_id: str
    run_id: str
    plan: str = Field("", max_length=MAX_PLAN_CHARS)  # the approved plan ("" when none was needed)


class CriterionResult(_Model):
    """One acceptance criterion and its evidence, as the service checked it (core/acceptance.py)."""

    criterion: str = Field(max_length=500)
    covered: bool
    tests: list[str] = Field(default_factory=list, max_length=10)
    reason: str = Field("", max_length=500)


class ImplementRunResult(_Model):
    status: Literal["pushed", "no_change"]
    project_id: int
    target_branch: str
    branch: str = ""
    commit_sha: str = ""
    commit_title: str = Field("", max_length=200)
    agent_summary: str = Field("", max_length=MAX_SUMMARY_CHARS)
    tests: TestEvidence | None = None
    # When a retried attempt found its own earlier push but not the measured evidence (the worker died
    # between push and heartbeat), the one-line evidence from the commit message stands in for it.
    tests_note: str = Field("", max_length=500)
    recovered: bool = False
    tokens_used: int = 0  # prompt + completion tokens of the run: the project's daily token budget
    criteria: list[CriterionResult] = Field(default_factory=list, max_length=50)


class OpenMRInput(_Model):
    issue_key: str
    issue_summary: str = Field("", max_length=1000)
    workflow_id: str
    run: ImplementRunResult
    plan_note: str = Field("", max_length=500)  # e.g. "Plan approved by Lee Lead (Jira comment)"


class OpenMRResult(_Model):
    iid: int
    web_url: str
    created: bool


class ImplementIssueResult(_Model):
    status: Literal["in_review", "no_change", "not_mapped", "skipped", "plan_expired", "plan_rejected"]
    issue_key: str
    reason: str = ""
    branch: str = ""
    mr_url: str = ""
    plan_rounds: int = 0  # plans posted (0: no approval needed)
    review_rounds: int = 0  # fix rounds of the review loop
    reviews: int = 0  # ReviewMR child runs
    ready: bool = False  # marked ready (never merged)
    draft_reason: str = ""  # why it stays a draft
    plan_approved_by: str = ""
    plan_approved_via: str = ""


class ImplementProgress(_Model):
    step: str
    branch: str = ""
    mr_url: str = ""
    plan_round: int = 0
    waiting_since: str = ""  # ISO time the current plan was posted, while waiting for a decision
    ignored: list[str] = Field(default_factory=list, max_length=5)  # decisions by users who may not
    review_round: int = 0  # fix rounds of the review loop so far


# --- the reviewer ↔ implementer loop ------------------------------------------------------------------
class LoopPolicy(_Model):
    rounds: int  # IMPLEMENT_REVIEW_ROUNDS (0: no loop)
    blocking_severity: str
    may_mark_ready: bool  # IMPLEMENT_MARK_READY or AUTO_MERGE_ENABLED


class ReviewFindings(_Model):
    """The agent's open finding threads on its own MR after a review, as GitLab shows them."""

    head_sha: str
    blocking: list[OpenFinding] = Field(default_factory=list, max_length=30)
    other_open: int = 0  # open below the blocking severity
    dismissed: list[str] = Field(default_factory=list, max_length=30)  # titles dismissed with a reason
    verified: list[str] = Field(default_factory=list, max_length=30)  # titles the review saw fixed


class FixRoundInput(_Model):
    issue_key: str = Field(pattern=JIRA_KEY_PATTERN)
    workflow_id: str
    run_id: str
    project_id: int
    mr_iid: int
    head_sha: str
    round: int = Field(ge=1)
    findings: list[OpenFinding] = Field(max_length=30)


class FindingReply(_Model):
    thread_id: str
    title: str = Field("", max_length=300)
    action: Literal["fixed", "dismissed", "unanswered"]
    reason: str = Field("", max_length=500)


class FixRoundResult(_Model):
    status: Literal["pushed", "no_change", "moved_on"]
    head_sha: str  # the MR's head after this round
    commit_sha: str = ""
    replies: list[FindingReply] = Field(default_factory=list, max_length=30)
    tests: TestEvidence | None = None
    tokens_used: int = 0


class LoopOutcome(_Model):
    issue_key: str
    workflow_id: str
    project_id: int
    mr_iid: int
    head_sha: str
    rounds: int  # fix rounds done
    reviews: int
    tests_passing: bool
    tests_line: str = Field("", max_length=500)
    blocking: list[str] = Field(default_factory=list, max_length=30)  # titles still open and blocking
    replies: list[FindingReply] = Field(default_factory=list, max_length=100)
    review_failed: str = Field("", max_length=300)
    may_mark_ready: bool = False
    # Test-harness files (Makefile, conftest.py, ...) the agent changed in any round: the service's
    # runs used the target branch's versions, but a later round's base contains them, so a person looks.
    harness_edited: list[str] = Field(default_factory=list, max_length=50)


class LoopResult(_Model):
    ready: bool
    reason: str = Field("", max_length=1000)


# --- pollers ----------------------------------------------------------------------------------------
class PollJiraResult(_Model):
    found: int = 0
    started: list[str] = Field(default_factory=list, max_length=500)
    already_running: int = 0
    errors: list[str] = Field(default_factory=list, max_length=50)


class PollGitLabInput(_Model):
    """What the `poll-gitlab` Schedule passes: its interval, the base of the backoff after failed
    polls (workflows/poll_gitlab.py). Started by hand with nothing, the seed's 30 s."""

    interval_s: int = Field(30, ge=1, le=86_400)


class PollGitLabResult(_Model):
    """Also the watermark carrier: the next scheduled run reads it as its last completion result."""

    watermark: str | None = None  # ISO-8601 updated_at of the newest MR seen so far
    since: str = ""  # the updated_after this run asked for (watermark minus the clock-skew overlap)
    seen: int = 0
    started: list[str] = Field(default_factory=list, max_length=500)
    skipped: int = 0
    duplicates: int = 0
    # MRDiscussion runs for @mentions and replies in the agent's threads (ID discussion:<project>:<note>)
    answers_started: list[str] = Field(default_factory=list, max_length=500)
    answer_duplicates: int = 0
    errors: list[str] = Field(default_factory=list, max_length=50)
