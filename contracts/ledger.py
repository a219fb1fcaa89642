"""The finding ledger of one merge request and the project notes learned from rebuttals.

Small, bounded JSON: the ledger travels in the review's result (the `ledger` query of ReviewMR)
and is stored, signed, in the MR's summary note (docs/adr/0023-finding-ledger.md); a project's
learnings are the state of its ProjectLearnings workflow.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FindingState = Literal[
    "open", "addressed", "verified", "resolved", "rebutted", "closed", "outdated", "reopened"
]
TERMINAL: frozenset[str] = frozenset({"resolved", "closed", "outdated"})
Category = Literal[
    "security", "correctness", "reliability", "performance", "maintainability", "tests", "docs", "other"
]
MAX_ENTRIES = 300
MAX_EVENTS = 30
MAX_ANCHORS = 20
MAX_LEARNINGS = 100


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LedgerEvent(_Model):
    state: FindingState
    sha: str = Field("", max_length=64)  # the head the change was seen at
    at: str = Field("", max_length=40)  # ISO time
    by: str = Field("", max_length=255)  # "agent" or the GitLab username
    note: str = Field("", max_length=300)


class Anchor(_Model):
    sha: str = Field(max_length=64)
    file: str = Field(max_length=1000)
    line: int = Field(ge=1)
    end_line: int | None = None


class LedgerEntry(_Model):
    fingerprint: str = Field(max_length=64)
    thread_id: str = Field(max_length=100)
    severity: str = Field("minor", max_length=20)
    category: str = Field("other", max_length=40)
    title: str = Field("", max_length=300)
    code: str = Field("", max_length=32)  # hash of the normalised code at the anchor when raised
    raised_sha: str = Field("", max_length=64)
    raised_at: str = Field("", max_length=40)
    anchors: list[Anchor] = Field(default_factory=list, max_length=MAX_ANCHORS)  # where it moved, last = now
    state: FindingState = "open"
    history: list[LedgerEvent] = Field(default_factory=list, max_length=MAX_EVENTS)
    fix_claimed: bool = False  # a human said "fixed" since the agent last checked
    learned: str = Field("", max_length=40)  # id of the project note its rebuttal became

    @property
    def anchor(self) -> Anchor | None:
        return self.anchors[-1] if self.anchors else None

    def ever(self, state: str) -> bool:
        return any(e.state == state for e in self.history)

    def first_at(self, state: str) -> str:
        return next((e.at for e in self.history if e.state == state), "")


class Ledger(_Model):
    version: Literal[1] = 1
    project_id: int = 0
    mr_iid: int = 0
    entries: list[LedgerEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)
    reviews: int = 0  # completed reviews that updated it
    last_sha: str = Field("", max_length=64)
    tokens: int = 0  # model tokens of those reviews
    repeats_prevented: int = 0  # findings the model repeated (same fingerprint or reworded) not posted
    held_back: int = 0  # findings on lines the new commits did not touch, not posted

    def entry(self, thread_id: str) -> LedgerEntry | None:
        return next((e for e in self.entries if e.thread_id == thread_id), None)


class Learning(_Model):
    """A project note: what a member said when rebutting a finding, shown to later reviews as data."""

    id: str = Field(max_length=40)
    project_id: int
    title: str = Field(max_length=300)  # the finding it rebutted
    file: str = Field("", max_length=1000)
    text: str = Field(max_length=500)  # the member's reason, untrusted text
    by: str = Field(max_length=255)
    mr_iid: int = 0
    at: str = Field("", max_length=40)


def learnings_id(task_queue: str, project_id: int) -> str:
    """ID of a project's ProjectLearnings workflow (per task queue, as the agent slots)."""
    return f"learnings:{task_queue}:{project_id}"
