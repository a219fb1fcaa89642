"""What an agent run is asked to do and what it hands back: the contract between the activities and
the executors (local subprocess or Kubernetes Job), serialised as JSON between them.

A task carries references and bounded text, never a credential: the clone is prepared by the
executor, and the prompt is built inside the sandbox from the task and the checked-out repository.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.reports import Report

MAX_TEXT = 20_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


def tokens_used(usage: TokenUsage | None) -> int:
    """The model tokens one agent run spent (prompt + completion), counted against the project's
    daily token budget (AGENT_TOKENS_PER_PROJECT_PER_DAY); 0 when the run reported no usage."""
    return usage.prompt_tokens + usage.completion_tokens if usage else 0


class PriorThread(_Model):
    """One of the agent's earlier threads, shown so it is not raised again and can be judged."""

    thread_id: str
    file: str | None = None
    line: int | None = None
    title: str = Field("", max_length=300)
    body: str = Field("", max_length=2000)
    outdated: bool = False
    human_replies: list[str] = Field(default_factory=list, max_length=10)


class DismissedThread(_Model):
    """A thread a human resolved or dismissed: never to be raised again, not to be judged."""

    file: str | None = None
    line: int | None = None
    title: str = Field("", max_length=300)


class RepoRef(_Model):
    """Where the executor clones from. The token is added by the executor, never stored here."""

    clone_url: str
    head_sha: str = Field(pattern=r"^[0-9a-f]{7,64}$")
    branches: list[str] = Field(default_factory=list)


class ReviewTask(_Model):
    kind: Literal["review"] = "review"
    repo: RepoRef
    project_path: str
    mr_iid: int
    title: str = Field("", max_length=MAX_TEXT)
    description: str = Field("", max_length=MAX_TEXT)
    commit_messages: list[str] = Field(default_factory=list, max_length=100)
    base_sha: str
    since_sha: str | None = None
    prior_threads: list[PriorThread] = Field(default_factory=list, max_length=100)
    dismissed: list[DismissedThread] = Field(default_factory=list, max_length=200)
    exclude: list[str] = Field(default_factory=list)
    max_diff_lines: int = 3000


class DiscussionTask(_Model):
    kind: Literal["discussion"] = "discussion"
    repo: RepoRef
    project_path: str
    mr_iid: int
    title: str = Field("", max_length=MAX_TEXT)
    description: str = Field("", max_length=MAX_TEXT)
    base_sha: str
    thread: list[dict[str, str]] = Field(default_factory=list, max_length=100)  # author, body
    request: str = Field(max_length=MAX_TEXT)
    position: str = ""  # "path:line" when the thread is inline
    own_finding_thread_id: str | None = None
    may_push: bool = False
    max_diff_lines: int = 3000
    # Added for MRDiscussion: who asked (for the prompt and the commit trailer), why a requested change
    # may only be described, and the globs never shown in the diff (as for reviews).
    author: str = Field("", max_length=255)
    no_push_reason: str = Field("", max_length=500)
    exclude: list[str] = Field(default_factory=list)


class ImplementTask(_Model):
    kind: Literal["implement"] = "implement"
    repo: RepoRef
    project_path: str
    issue_key: str
    summary: str = Field("", max_length=1000)
    description: str = Field("", max_length=MAX_TEXT)
    test_command: str | None = None


AgentTask = Annotated[ReviewTask | DiscussionTask | ImplementTask, Field(discriminator="kind")]


class SkippedFile(_Model):
    path: str
    reason: str


class ReviewScope(_Model):
    mode: Literal["full", "incremental", "nothing"]
    reviewed_files: list[str] = Field(default_factory=list)
    skipped: list[SkippedFile] = Field(default_factory=list)
    full_reason: str = ""
    diff_lines: int = 0


class TestEvidence(_Model):
    command: str | None
    ran: bool
    exit_code: int | None = None
    passed: int | None = None
    failed: int | None = None
    duration_s: float = 0.0
    output_tail: str = Field("", max_length=4000)
    discovered: str = ""  # how the command was found, when not configured
    source: str = Field("", max_length=500)  # the tree the tests ran on
    harness_reset: list[str] = Field(default_factory=list, max_length=50)  # agent edits not used


class AgentResult(_Model):
    kind: Literal["review", "discussion", "implement"]
    reports: list[Report] = Field(default_factory=list)
    final_message: str = Field("", max_length=MAX_TEXT)
    usage: TokenUsage | None = None
    duration_s: float = 0.0
    prompt_chars: int = 0
    scope: ReviewScope | None = None
    patch: str | None = None
    patch_too_large: bool = False  # the agent changed more than a patch may carry; nothing to push
    tests: TestEvidence | None = None
