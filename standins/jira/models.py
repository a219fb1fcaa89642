"""The Jira stand-in's state, as plain dataclasses tests can read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

StatusCategory = Literal["new", "indeterminate", "done"]
Body = str | dict[str, Any]  # v2 plain/wiki text or a v3 ADF document


class JiraApiError(Exception):
    """An error the server answers in Jira's shape: `{"errorMessages": [...], "errors": {...}}`."""

    def __init__(
        self, status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status}: {messages or errors}")
        self.status = status
        self.messages = messages or []
        self.errors = errors or {}

    def body(self) -> dict[str, Any]:
        return {"errorMessages": self.messages, "errors": self.errors}


ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."


@dataclass(frozen=True)
class User:
    account_id: str
    display_name: str
    email: str


@dataclass(frozen=True)
class Account:
    """An API identity: Basic auth with (email, token), or Bearer with the token alone (a PAT)."""

    user: User
    token: str


@dataclass(frozen=True)
class Status:
    name: str
    id: str
    category: StatusCategory


@dataclass(frozen=True)
class Transition:
    """A workflow transition; `from_statuses` empty means global (available from every other status)."""

    id: str
    name: str
    to: str
    from_statuses: tuple[str, ...] = ()

    def available_from(self, status: str) -> bool:
        if status == self.to:
            return False
        return not self.from_statuses or status in self.from_statuses


@dataclass
class Workflow:
    statuses: list[str]
    transitions: list[Transition]


@dataclass
class Project:
    key: str
    name: str
    id: str
    next_number: int = 1


@dataclass
class Comment:
    id: str
    body: Body
    author: User
    created: datetime
    updated: datetime


@dataclass
class RemoteLink:
    id: int
    object: dict[str, Any]
    global_id: str | None = None
    application: dict[str, Any] | None = None
    relationship: str | None = None


@dataclass
class Issue:
    id: str
    key: str
    project: str
    summary: str
    description: Body | None
    status: str
    issuetype: str
    labels: list[str]
    created: datetime
    updated: datetime
    reporter: User
    assignee: User | None = None
    comments: list[Comment] = field(default_factory=list)
    remote_links: list[RemoteLink] = field(default_factory=list)


@dataclass(frozen=True)
class TransitionRecord:
    """One status change; `by` is the API account's e-mail, or "human" for `set_status`."""

    key: str
    from_status: str
    to_status: str
    transition_id: str | None
    transition_name: str | None
    by: str
    at: datetime


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, list[str]]
    account: str | None  # e-mail of the authenticated account
    status: int
    body: Any  # parsed JSON body, or None
