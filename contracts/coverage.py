"""The file bundles a large review is split into (per-file coverage is contracts/delivery.py).

Shared by ReviewMR, its ReviewBundle children and the activities: the changed files as planned
from GitLab, a planned bundle, and a bundle's input. Small JSON only: paths and counts, never diff
text.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts.agent_tasks import ReviewTask

MAX_PLANNED_FILES = 5000  # an MR with more files is planned on its first 5,000 (GitLab's own limit is 3,000)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChangedFile(_Model):
    """A changed file as GitLab lists it, with the size the bundling goes by."""

    path: str
    old_path: str | None = None  # set for renames
    lines: int = Field(0, ge=0)  # added + removed lines of its diff
    chars: int = Field(0, ge=0)  # characters of its diff text (the token estimate goes by them)


class PlannedBundle(_Model):
    """One bundle of a large review as planned: its files, in the order they are shown."""

    files: list[str] = Field(min_length=1, max_length=MAX_PLANNED_FILES)
    lines: int = 0
    tokens: int = 0  # estimated diff tokens
    oversized: bool = False  # one file over a run's budget: reviewed in part


class ReviewBundleInput(_Model):
    """One bundle of a large review: the parent's prepared task, narrowed to the bundle's files."""

    project_id: int
    mr_iid: int
    head_sha: str
    parent_id: str
    index: int = Field(ge=0)
    count: int = Field(ge=1)
    task: ReviewTask
    open_thread_ids: list[str] = Field(default_factory=list, max_length=100)
    last_reviewed_sha: str | None = None
    fork_author: str = ""
