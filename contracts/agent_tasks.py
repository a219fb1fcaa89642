"""What an agent run is asked to do and what it hands back: the contract between the activities and
the executors (local subprocess or Kubernetes Job), serialised as JSON between them.

A task carries references and bounded text, never a credential: the clone is prepared by the
executor, and the prompt is built inside the sandbox from the task and the checked-out repository.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts.ledger import Learning
from contracts.project_map import MAX_PLUGINS, ModelName, plugin_name
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


# The project's plugins (project map `plugins`), as names: the executor finds each under its own
# COPILOT_PLUGIN_ROOT (executors/plugins.py), so a task can name a plugin but never a path.
PluginNames = Annotated[list[Annotated[str, AfterValidator(plugin_name)]], Field(max_length=MAX_PLUGINS)]
# The project's model (project map `model`); None: COPILOT_MODEL of the executor.
ProjectModel = ModelName


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
    """Where the executor clones from. The token is added by the executor, never stored here:
    `credential` names which one (an alias of GITLAB_TOKEN__<ALIAS>; "default" is GITLAB_TOKEN)."""

    clone_url: str
    head_sha: str = Field(pattern=r"^[0-9a-f]{7,64}$")
    branches: list[str] = Field(default_factory=list)
    credential: str = Field("default", pattern=r"^[a-z0-9_.-]{1,64}$")


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
    # One bundle of a large MR (ReviewMR fans out, see core/review_bundles.py): only these paths are
    # reviewed ([]: every changed file), one file over the line budget is shown in part, and the
    # prompt says which bundle this is.
    files: list[str] = Field(default_factory=list, max_length=5000)
    bundle_note: str = Field("", max_length=500)
    learnings: list[Learning] = Field(default_factory=list, max_length=100)  # the project's notes
    plugins: PluginNames = Field(default_factory=list)
    model: ProjectModel = None


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
    plugins: PluginNames = Field(default_factory=list)
    model: ProjectModel = None


class OpenFinding(_Model):
    """A review finding on the agent's own MR, still open: what a fix round answers."""

    thread_id: str = Field(max_length=100)
    severity: str = Field("minor", max_length=20)
    title: str = Field("", max_length=300)
    file: str | None = Field(None, max_length=1000)
    line: int | None = None
    body: str = Field("", max_length=2000)


class ImplementTask(_Model):
    kind: Literal["implement"] = "implement"
    repo: RepoRef
    project_path: str
    issue_key: str
    summary: str = Field("", max_length=1000)
    description: str = Field("", max_length=MAX_TEXT)
    test_command: str | None = None
    plan: str = Field("", max_length=MAX_TEXT)  # the approved plan to follow ("" without approval)
    criteria: list[str] = Field(default_factory=list, max_length=50)  # acceptance criteria, numbered 1..
    # A fix round of the review loop: the open findings of the review of the agent's own MR.
    findings: list[OpenFinding] = Field(default_factory=list, max_length=30)
    review_round: int = 0
    # The target-branch commit whose skills, custom agents and instructions are trusted. A first run
    # starts on the target branch (None: repo.head_sha); a fix round starts on the agent's own MR
    # branch, whose files the agent wrote, so its config must come from here instead.
    config_sha: str | None = Field(None, pattern=r"^[0-9a-f]{7,64}$")
    plugins: PluginNames = Field(default_factory=list)
    model: ProjectModel = None


class PlanTask(_Model):
    """A plan-only run: read-only tools on the target branch, one `report_plan` call."""

    kind: Literal["plan"] = "plan"
    repo: RepoRef
    project_path: str
    issue_key: str
    summary: str = Field("", max_length=1000)
    description: str = Field("", max_length=MAX_TEXT)
    criteria: list[str] = Field(default_factory=list, max_length=50)
    previous_plan: str = Field("", max_length=MAX_TEXT)  # a revision: the plan changes were asked for
    feedback: str = Field("", max_length=MAX_TEXT)  # and what the approver asked
    plugins: PluginNames = Field(default_factory=list)
    model: ProjectModel = None


AgentTask = Annotated[ReviewTask | DiscussionTask | ImplementTask | PlanTask, Field(discriminator="kind")]


class SkippedFile(_Model):
    path: str
    reason: str


class ReviewScope(_Model):
    mode: Literal["full", "incremental", "nothing"]
    reviewed_files: list[str] = Field(default_factory=list)
    skipped: list[SkippedFile] = Field(default_factory=list)
    partial: list[SkippedFile] = Field(default_factory=list)  # shown in part; the reason says which part
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
    kind: Literal["review", "discussion", "implement", "plan"]
    reports: list[Report] = Field(default_factory=list)
    final_message: str = Field("", max_length=MAX_TEXT)
    usage: TokenUsage | None = None
    duration_s: float = 0.0
    prompt_chars: int = 0
    scope: ReviewScope | None = None
    patch: str | None = None
    patch_too_large: bool = False  # the agent changed more than a patch may carry; nothing to push
    tests: TestEvidence | None = None
