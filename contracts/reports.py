"""The agent's structured answers, as the report tool records them and the activities read them.

Only the standard library and pydantic: executors/report_tool.py runs inside the agent's sandbox by path
and imports this module, so it must stay this light (about 0.15 s with pydantic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_FINDINGS = 50
MAX_BODY_CHARS = 4000
MAX_REPLY_CHARS = 10000
MAX_SUGGESTION_LINES = 100

Kind = Literal["review", "discussion", "implement", "plan"]
# The MCP server name is the prefix the model sees: reviewer-report_finding, discussion-reply, ...
SERVER_NAMES: dict[str, str] = {
    "review": "reviewer",
    "discussion": "discussion",
    "implement": "implementer",
    "plan": "planner",
}

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_BODY_CHARS)]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Finding(_Args):
    """One inline review comment. `suggestion` replaces lines line..end_line of the new file."""

    file: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)] = Field(
        description="Path of the file relative to the repository root, as in the diff"
    )
    line: int = Field(ge=1, description="First line the comment is about")
    end_line: int | None = Field(None, ge=1, description="Last line for a multi-line comment (default: line)")
    side: Literal["new", "old"] = Field(
        "new", description='"new" for added or unchanged lines, "old" for removed lines'
    )
    severity: Literal["critical", "major", "minor", "info"]
    title: ShortText
    body: Body = Field(description="Explanation in Markdown")
    suggestion: str | None = Field(
        None,
        description="Full replacement text for lines line..end_line on the new side (no ``` fences)",
    )
    category: Literal[
        "security", "correctness", "reliability", "performance", "maintainability", "tests", "docs", "other"
    ] = Field("other", description="What kind of problem it is")

    @model_validator(mode="after")
    def _consistent(self) -> Finding:
        if self.file.startswith("/") or ".." in Path(self.file).parts:
            raise ValueError("file must be a path relative to the repository root, without '..'")
        if self.end_line is not None and self.end_line < self.line:
            raise ValueError("end_line must be >= line")
        if self.suggestion is not None:
            if self.side != "new":
                raise ValueError("a suggestion is only possible on the new side")
            if len(self.suggestion.splitlines()) > MAX_SUGGESTION_LINES:
                raise ValueError(f"suggestion must have at most {MAX_SUGGESTION_LINES} lines")
        return self


class Resolution(_Args):
    """The agent's verdict on an earlier discussion thread."""

    thread_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    status: Literal["resolved", "partial", "not_addressed"]
    reply: Body


class FinishReview(_Args):
    summary: Body


class DiscussionReply(_Args):
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REPLY_CHARS)]


class ChangeReport(_Args):
    summary: Body
    commit_type: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,20}$")] = Field(
        description="Conventional commit type: fix, feat, test, docs, refactor, chore, ..."
    )


class CriterionAnswer(_Args):
    """How the change meets one acceptance criterion (numbered as the prompt lists them)."""

    criterion: int = Field(ge=1, le=50, description="Number of the criterion in the prompt's list")
    status: Literal["addressed", "not_covered"]
    tests: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]] = (
        Field(default_factory=list, max_length=10, description="Test files (paths) that check this criterion")
    )
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = Field(
        "", description="Why it is not covered, or how it is addressed"
    )


class Implementation(_Args):
    summary: Body
    commit_summary: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120, pattern=r"^[^\n]*$")
    ] = Field(description="One-line commit message subject")
    test_command: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        None, description="Command that runs the relevant tests, if any"
    )
    criteria: list[CriterionAnswer] = Field(
        default_factory=list, max_length=50, description="One answer per acceptance criterion listed"
    )


Item = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class FindingAnswer(_Args):
    """The implementer's answer to one review finding on its own MR: a fix, or a reasoned dismissal."""

    thread_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    action: Literal["fixed", "dismissed"]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=2000)] = Field(
        description="What you changed, or why the finding does not apply (a real reason, not 'acknowledged')"
    )


class Plan(_Args):
    """The plan proposed before any code is written (a plan-only run: read-only tools)."""

    approach: Body = Field(description="How you will implement the issue, in a few Markdown sentences")
    files: list[Item] = Field(default_factory=list, max_length=50, description="Files to change or add")
    tests: list[Item] = Field(default_factory=list, max_length=30, description="Tests you will add")
    risks: list[Item] = Field(default_factory=list, max_length=20)
    open_questions: list[Item] = Field(default_factory=list, max_length=20)


Report = (
    Finding
    | Resolution
    | FinishReview
    | DiscussionReply
    | ChangeReport
    | Implementation
    | Plan
    | FindingAnswer
)
