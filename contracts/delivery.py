"""What a review covered and what it delivered: per-file coverage, the receipt, the commit status.

Shared by the review run (which knows what the agent saw), the fan-out over bundles (which merges
the coverage of its children: `Coverage.merge`), post_review (which knows what reached GitLab) and
ReviewMR (which sets the `copilot-review` commit status from them). Small JSON: paths and short
reasons, bounded lists; a list cut at its cap says how many it left out, and those count as gaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_COVERAGE_FILES = 2000
MAX_UNDELIVERED = 100
STATUS_NAME = "copilot-review"

CoverageState = Literal["reviewed", "partly", "not_reviewed"]
StatusState = Literal["running", "success", "failed", "canceled"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileCoverage(_Model):
    """One file of the MR's diff (or of the incremental diff): whether the agent reviewed it."""

    path: str = Field(min_length=1, max_length=1000)
    state: CoverageState
    reason: str = Field("", max_length=300)  # why partly or not reviewed
    # Left out by configuration or nature (REVIEW_EXCLUDE, binary files): listed, but not a gap
    # that makes the review incomplete; a file over the diff budget or of a failed bundle is a gap.
    excluded: bool = False


class Coverage(_Model):
    files: list[FileCoverage] = Field(default_factory=list, max_length=MAX_COVERAGE_FILES)
    omitted: int = Field(0, ge=0)  # files past the list's cap: counted as not reviewed

    @classmethod
    def of(cls, files: Iterable[FileCoverage]) -> Coverage:
        listed = list(files)
        return cls(files=listed[:MAX_COVERAGE_FILES], omitted=max(0, len(listed) - MAX_COVERAGE_FILES))

    @classmethod
    def merge(cls, parts: Iterable[Coverage]) -> Coverage:
        """One coverage from several runs over disjoint files (bundles); a file seen twice keeps
        its best state (a bundle retried after a failure)."""
        rank = {"reviewed": 2, "partly": 1, "not_reviewed": 0}
        best: dict[str, FileCoverage] = {}
        omitted = 0
        for part in parts:
            omitted += part.omitted
            for item in part.files:
                known = best.get(item.path)
                if known is None or rank[item.state] > rank[known.state]:
                    best[item.path] = item
        merged = cls.of(best.values())
        return merged.model_copy(update={"omitted": merged.omitted + omitted})

    @property
    def total(self) -> int:
        """Files in scope, excluded ones not counted."""
        return sum(1 for f in self.files if not f.excluded) + self.omitted

    @property
    def reviewed(self) -> int:
        return sum(1 for f in self.files if f.state == "reviewed" and not f.excluded)

    @property
    def gaps(self) -> list[FileCoverage]:
        """Files partly or not reviewed that should have been (the review is incomplete)."""
        return [f for f in self.files if f.state != "reviewed" and not f.excluded]

    @property
    def complete(self) -> bool:
        return not self.gaps and self.omitted == 0


class Undelivered(_Model):
    """Something the review meant to post that is not on the MR, and why."""

    what: str = Field(max_length=300)  # "finding `app/x.py:10`", "reply in thread abc123"
    reason: str = Field(max_length=300)


class StatusUpdate(_Model):
    """The `copilot-review` commit status to set on the reviewed head."""

    state: StatusState
    description: str = Field("", max_length=255)
    target_url: str = Field("", max_length=2000)


def undelivered_list(items: Iterable[Undelivered]) -> list[Undelivered]:
    return list(items)[:MAX_UNDELIVERED]
