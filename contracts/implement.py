"""Inputs and results of ImplementIssue and of the two polling workflows.

All of it travels through Temporal history and the Web UI: small, bounded, secret-free. The patch and
the repository never appear here; the implement activity keeps them inside itself and hands back the
pushed branch and commit (references) plus bounded text.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.agent_tasks import TestEvidence
from contracts.models import Trigger

JIRA_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*-\d+$"
MAX_SUMMARY_CHARS = 4000


class _Model(BaseModel):
    # Unknown fields are refused so a typo in `temporal workflow start --input` fails loudly.
    model_config = ConfigDict(extra="forbid")


# --- ImplementIssue ---------------------------------------------------------------------------------
class ImplementIssueInput(_Model):
    issue_key: str = Field(pattern=JIRA_KEY_PATTERN, max_length=64)
    trigger: Trigger = Trigger.MANUAL


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


class OpenMRInput(_Model):
    issue_key: str
    issue_summary: str = Field("", max_length=1000)
    workflow_id: str
    run: ImplementRunResult


class OpenMRResult(_Model):
    iid: int
    web_url: str
    created: bool


class ImplementIssueResult(_Model):
    status: Literal["in_review", "no_change", "not_mapped", "skipped"]
    issue_key: str
    reason: str = ""
    branch: str = ""
    mr_url: str = ""


class ImplementProgress(_Model):
    step: str
    branch: str = ""
    mr_url: str = ""


# --- pollers ----------------------------------------------------------------------------------------
class PollJiraResult(_Model):
    found: int = 0
    started: list[str] = Field(default_factory=list, max_length=500)
    already_running: int = 0
    errors: list[str] = Field(default_factory=list, max_length=50)


class PollGitLabResult(_Model):
    """Also the watermark carrier: the next scheduled run reads it as its last completion result."""

    watermark: str | None = None  # ISO-8601 updated_at of the newest MR seen so far
    since: str = ""  # the updated_after this run asked for (watermark minus the clock-skew overlap)
    seen: int = 0
    started: list[str] = Field(default_factory=list, max_length=500)
    skipped: int = 0
    duplicates: int = 0
    errors: list[str] = Field(default_factory=list, max_length=50)
