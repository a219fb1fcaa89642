"""The stand-in's state: plain dataclasses, only ever touched under the store's lock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from standins.gitlab.gitrepo import BareRepo
from standins.gitlab.positions import FileDiff


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ts_iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class User:
    id: int
    username: str
    name: str
    token: str

    def ref(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "name": self.name,
            "state": "active",
            "avatar_url": None,
            "web_url": f"/{self.username}",
        }


@dataclass(frozen=True)
class AccessEntry:
    """One entry of a protected branch's push or merge access: a role, a user or a group."""

    access_level: int | None = None  # 0 no one, 30 developers + maintainers, 40 maintainers, 60 admins
    user_id: int | None = None
    group_id: int | None = None


@dataclass
class ProtectedBranch:
    id: int
    name: str  # a branch name or a wildcard such as `release/*`
    push: list[AccessEntry]
    merge: list[AccessEntry]
    allow_force_push: bool = False


@dataclass
class Group:
    id: int
    path: str
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level


@dataclass
class Project:
    id: int
    path_with_namespace: str
    default_branch: str
    repo: BareRepo
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level
    created_at: str = field(default_factory=now_iso)
    protected: list[ProtectedBranch] = field(default_factory=list)
    statuses: list[CommitStatus] = field(default_factory=list)  # oldest first

    @property
    def name(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[-1]

    @property
    def namespace(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[0]


@dataclass
class Version:
    id: int
    base_sha: str
    start_sha: str
    head_sha: str
    created_at: str
    files: list[FileDiff]


@dataclass
class AwardEmoji:
    id: int
    name: str
    user: User
    awardable_type: str
    awardable_id: int
    created_at: str = field(default_factory=now_iso)


@dataclass
class Note:
    id: int
    type: str | None
    body: str
    author: User
    created_at: str
    updated_at: str
    discussion_id: str
    resolvable: bool
    position: dict[str, Any] | None = None
    system: bool = False
    resolved: bool = False
    resolved_by: User | None = None
    resolved_at: str | None = None
    awards: list[AwardEmoji] = field(default_factory=list)


@dataclass
class DraftNote:
    """A pending comment of one user (GitLab's draft_notes): only its author sees it until published."""

    id: int
    author: User
    note: str
    position: dict[str, Any] | None = None
    discussion_id: str | None = None  # in_reply_to_discussion_id: a reply in that thread
    resolve_discussion: bool = False
    commit_id: str | None = None


@dataclass
class CommitStatus:
    """One external status of a commit (GitLab's GenericCommitStatus)."""

    id: int
    sha: str
    ref: str | None
    name: str
    status: str  # created, pending, running, success, failed, canceled, skipped
    author: User
    description: str | None = None
    target_url: str | None = None
    created_at: str = field(default_factory=now_iso)
    started_at: str | None = None
    finished_at: str | None = None


@dataclass(frozen=True)
class Notification:
    """What GitLab would e-mail the MR's participants: one per note written directly, one per
    published review (bulk publish), however many notes the review holds."""

    kind: str  # "note" or "review"
    project: str
    mr_iid: int
    author: str
    notes: int


@dataclass
class Discussion:
    id: str
    individual_note: bool
    notes: list[Note] = field(default_factory=list)


@dataclass
class MergeRequest:
    id: int
    iid: int
    project: Project
    title: str
    description: str
    source_branch: str
    target_branch: str
    author: User
    state: str
    created_at: str
    updated_at: str
    versions: list[Version] = field(default_factory=list)  # oldest first
    discussions: list[Discussion] = field(default_factory=list)
    awards: list[AwardEmoji] = field(default_factory=list)
    drafts: list[DraftNote] = field(default_factory=list)
    # A fork MR: the fork's project ID (its commits still live in `project`'s repository, as GitLab
    # keeps them under refs/merge-requests/<iid>/head); None for an MR from the project itself.
    fork_project_id: int | None = None
    merged_at: str | None = None

    @property
    def draft(self) -> bool:
        return is_draft_title(self.title)

    @property
    def latest(self) -> Version:
        return self.versions[-1]


def is_draft_title(title: str) -> bool:
    # GitLab's draft prefixes: "Draft:", "[Draft]", "(Draft)", case-insensitive.
    lowered = title.lstrip().lower()
    return lowered.startswith(("draft:", "[draft]", "(draft)"))


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    status: int
    user: str | None
    chunked: bool = False  # request body came with Transfer-Encoding: chunked
    at: float = 0.0  # time.monotonic() when the request line arrived (timing a flow: bench/)
    seconds: float = 0.0  # from then until the answer was ready to send


@dataclass(frozen=True)
class PushRecord:
    project: str
    branch: str
    old: str
    new: str
    forced: bool


@dataclass
class WebhookDelivery:
    event: str
    payload: dict[str, Any]
    status: int | None = None
    error: str | None = None
