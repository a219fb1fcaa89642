"""MRDiscussion: workflow input and result, and the values its activities hand each other.

Small JSON only: note and MR references, the decision flags, and the agent's bounded reply text.
The agent's patch never travels through history; it is committed inside the activity that ran it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.models import ResolutionStatus, Trigger

MAX_REPLY_CHARS = 10_000
MAX_SUMMARY_CHARS = 4000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MRDiscussionInput(_Model):
    """`temporal workflow start --type MRDiscussion --input '{"project_id": 7, "mr_iid": 3, "note_id": 55}'`"""

    project_id: int = Field(gt=0)
    mr_iid: int = Field(gt=0)
    note_id: int = Field(gt=0)
    discussion_id: str | None = Field(
        None, pattern=r"^[0-9a-f]{8,64}$", description="GitLab discussion of the note; looked up when omitted"
    )
    trigger: Trigger = Trigger.MANUAL


class DiscussionContext(_Model):
    """What the first activity found: whether to answer, and whether the answer may push."""

    ignore_reason: str = ""  # non-empty: end with status "ignored"
    already_replied: bool = False
    discussion_id: str = ""
    author_username: str = ""
    head_sha: str = ""
    may_push: bool = False
    no_push_reason: str = ""  # why a requested change will only be described
    own_finding: bool = False
    author_id: int = 0
    # Non-empty: a limit bites (role, rate): no agent run; the MR is told once per `limit_key`.
    limited_reason: str = ""
    limit_key: str = Field("", pattern=r"^[A-Za-z0-9._:/-]{0,200}$")


class AdmitDiscussionInput(_Model):
    """The spend limits an answer must pass before it may wait for an agent slot."""

    project_id: int
    mr_iid: int
    author_username: str
    author_id: int


class Admission(_Model):
    reason: str = ""  # "" admitted
    limit_key: str = Field("", pattern=r"^[A-Za-z0-9._:/-]{0,200}$")


class LimitNoticeInput(_Model):
    project_id: int
    mr_iid: int
    discussion_id: str
    reason: str = Field(max_length=1000)
    limit_key: str = Field(pattern=r"^[A-Za-z0-9._:/-]{1,200}$")


class DiscussionRunInput(_Model):
    project_id: int
    mr_iid: int
    note_id: int
    discussion_id: str
    author_username: str
    may_push: bool
    no_push_reason: str = ""
    own_finding: bool = False
    workflow_id: str


PushOutcome = Literal[
    "none",  # the agent changed nothing
    "pushed",
    "rebased",  # pushed after rebasing once onto a branch that moved during the run
    "branch_moved",  # the branch moved and the rebase did not apply: nothing pushed
    "not_allowed",  # the agent changed files but may not push (access, setting, fork)
    "too_large",
    "earlier",  # an earlier attempt of this workflow pushed already
]


class DiscussionRunResult(_Model):
    reply: str = Field("", max_length=MAX_REPLY_CHARS)
    push: PushOutcome = "none"
    commit_sha: str = ""
    commit_title: str = Field("", max_length=200)
    change_summary: str = Field("", max_length=MAX_SUMMARY_CHARS)
    files_changed: list[str] = Field(default_factory=list, max_length=100)
    resolution: ResolutionStatus | None = None
    resolution_reply: str = Field("", max_length=MAX_SUMMARY_CHARS)
    # Set when the service itself refused to push for the requester (a protected source branch they
    # may not push to, or GitLab no longer agreeing with the workflow's input): said in the reply.
    push_refusal: str = Field("", max_length=1000)
    tokens_used: int = 0  # prompt + completion tokens of the run: the project's daily token budget


class PostDiscussionReplyInput(_Model):
    project_id: int
    mr_iid: int
    note_id: int
    discussion_id: str
    workflow_id: str
    run: DiscussionRunResult | None = None
    failure: str = ""  # set instead of `run` when the run failed


class PostDiscussionReplyResult(_Model):
    posted: bool
    note_id: int | None = None
    resolved: bool = False


class MRDiscussionResult(_Model):
    status: Literal["replied", "ignored", "already_replied", "failed", "limited"]
    reason: str = ""
    push: PushOutcome = "none"
    commit_sha: str = ""
    reply_note_id: int | None = None
    resolved: bool = False


class DiscussionProgress(_Model):
    step: str
    note_id: int = 0
