"""The Jira stand-in's state and its rules: one object, one lock, every HTTP request goes through it.

Read methods return copies, so a test holding a result never sees (or races) later changes.
Domain rules mirror Jira Cloud where the service could trip on them: labels may not contain spaces,
comment and description text is capped at 32,767 characters, transitions must be available from the
issue's current status, and JQL naming an unknown project or status is an error.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from standins.jira import jql
from standins.jira.models import (
    ISSUE_NOT_FOUND,
    Account,
    Body,
    Comment,
    Issue,
    JiraApiError,
    Project,
    RemoteLink,
    RequestRecord,
    Status,
    StatusCategory,
    Transition,
    TransitionRecord,
    User,
    Workflow,
)

MAX_TEXT_CHARS = 32_767
MAX_SUMMARY_CHARS = 255
REQUEST_LOG_SIZE = 10_000
HUMAN = User(account_id="human-0001", display_name="Casey Human", email="casey@example.com")

TransitionSpec = Transition | tuple[str, str] | tuple[str, str, Sequence[str]]

DEFAULT_STATUSES: list[tuple[str, StatusCategory]] = [
    ("To Do", "new"),
    ("AI Ready", "new"),
    ("In Progress", "indeterminate"),
    ("In Review", "indeterminate"),
    ("Done", "done"),
]
# Named unlike their targets on purpose: the service must pick transitions by target status.
DEFAULT_TRANSITIONS: list[tuple[str, str]] = [
    ("Back to backlog", "To Do"),
    ("Hand to AI", "AI Ready"),
    ("Start work", "In Progress"),
    ("Submit for review", "In Review"),
    ("Close", "Done"),
]
_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,9}")


class JiraStore:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.RLock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._accounts: list[Account] = []
        self._projects: dict[str, Project] = {}
        self._statuses: dict[str, Status] = {}
        self._default_workflow = Workflow([], [])
        self._workflows: dict[str, Workflow] = {}
        self._issues: dict[str, Issue] = {}
        self._next_issue_id = 10001
        self._next_comment_id = 10001
        self._next_link_id = 10001
        self._transition_log: list[TransitionRecord] = []
        self._requests: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_SIZE)
        self._groups: dict[str, list[str]] = {}  # group name -> account e-mails
        self._roles: dict[str, dict[str, list[str]]] = {}  # project -> role name -> account e-mails
        self.add_workflow(DEFAULT_STATUSES, DEFAULT_TRANSITIONS)

    def now(self) -> datetime:
        return self._clock()

    # --- accounts -------------------------------------------------------------------------------------

    def add_account(self, email: str, token: str, display_name: str | None = None) -> Account:
        if not email or not token:
            raise ValueError("an account needs a non-empty email and token")
        with self._lock:
            if any(account.user.email == email for account in self._accounts):
                raise ValueError(f"account {email!r} exists already")
            user = User(f"acct-{len(self._accounts) + 1:04d}", display_name or email.split("@")[0], email)
            account = Account(user, token)
            self._accounts.append(account)
            return account

    def account_by_basic(self, email: str, token: str) -> Account | None:
        with self._lock:
            return next((a for a in self._accounts if a.user.email == email and a.token == token), None)

    def account_by_bearer(self, token: str) -> Account | None:
        with self._lock:
            return next((a for a in self._accounts if a.token == token), None)

    def account(self, email: str) -> Account:
        with self._lock:
            found = next((a for a in self._accounts if a.user.email == email), None)
            if found is None:
                raise ValueError(f"unknown account {email!r}; add_account first")
            return found

    # --- groups and project roles (who may approve) ------------------------------------------------------

    def add_group_member(self, group: str, email: str) -> None:
        self.account(email)
        with self._lock:
            members = self._groups.setdefault(group, [])
            if email not in members:
                members.append(email)

    def group_members(self, group: str) -> list[User] | None:
        """None for an unknown group (Jira answers 404)."""
        with self._lock:
            if group not in self._groups:
                return None
            return [self.account(email).user for email in self._groups[group]]

    def add_role_member(self, project: str, role: str, email: str) -> None:
        self.account(email)
        with self._lock:
            if project not in self._projects:
                raise ValueError(f"unknown project {project!r}")
            members = self._roles.setdefault(project, {}).setdefault(role, [])
            if email not in members:
                members.append(email)

    def project_roles(self, project: str) -> dict[str, list[User]]:
        """Every project has Administrators, Developers and Users (possibly empty), as in Jira."""
        with self._lock:
            named = {role: [] for role in ("Administrators", "Developers", "Users")}
            named.update(self._roles.get(project, {}))
            return {role: [self.account(e).user for e in emails] for role, emails in named.items()}

    # --- projects and workflows -----------------------------------------------------------------------

    def add_project(self, key: str, name: str) -> None:
        if not _PROJECT_KEY.fullmatch(key):
            raise ValueError(f"project key {key!r} must be 1-10 upper-case letters, digits or _")
        with self._lock:
            if key in self._projects:
                raise ValueError(f"project {key!r} exists already")
            self._projects[key] = Project(key=key, name=name, id=str(10000 + len(self._projects)))

    def add_workflow(
        self,
        statuses: Sequence[str | tuple[str, StatusCategory]],
        transitions: Sequence[TransitionSpec],
        *,
        project: str | None = None,
    ) -> None:
        """Set the workflow of `project` (or the default one of every project without its own).

        `statuses`: names, or (name, category) with category "new", "indeterminate" or "done"; a bare
        name is "new" if first, "done" if it reads like Done/Closed/Resolved, else "indeterminate".
        `transitions`: `Transition`s, or (name, target) / (name, target, from_statuses) tuples, given
        ids 11, 21, 31, ... in order. A transition without from-statuses is global.
        """
        with self._lock:
            if project is not None and project not in self._projects:
                raise ValueError(f"unknown project {project!r}")
            names = [self._register_status(spec, index) for index, spec in enumerate(statuses)]
            if not names or len(set(names)) != len(names):
                raise ValueError("a workflow needs at least one status, each named once")
            built = [_transition(spec, index) for index, spec in enumerate(transitions)]
            for transition in built:
                unknown = {transition.to, *transition.from_statuses} - set(names)
                if unknown:
                    raise ValueError(
                        f"transition {transition.name!r} uses unknown statuses {sorted(unknown)}"
                    )
            if len({t.id for t in built}) != len(built):
                raise ValueError("transition ids must be unique")
            workflow = Workflow(names, built)
            if project is None:
                self._default_workflow = workflow
            else:
                self._workflows[project] = workflow

    def _register_status(self, spec: str | tuple[str, StatusCategory], index: int) -> str:
        name, category = spec if isinstance(spec, tuple) else (spec, _guess_category(spec, index))
        if category not in ("new", "indeterminate", "done"):
            raise ValueError(f"status category of {name!r} must be new, indeterminate or done")
        known = self._statuses.get(name.lower())
        if known is None:
            self._statuses[name.lower()] = Status(name, str(10000 + len(self._statuses)), category)
        return self._statuses[name.lower()].name

    def _workflow(self, project: str) -> Workflow:
        return self._workflows.get(project, self._default_workflow)

    def status(self, name: str) -> Status:
        with self._lock:
            return self._statuses[name.lower()]

    def project(self, key_or_id: str) -> Project | None:
        with self._lock:
            found = self._projects.get(key_or_id.upper())
            found = found or next((p for p in self._projects.values() if p.id == key_or_id), None)
            return copy.copy(found)

    def projects(self) -> list[Project]:
        with self._lock:
            return [copy.copy(project) for project in self._projects.values()]

    # --- issues ---------------------------------------------------------------------------------------

    def create_issue(
        self,
        project: str,
        summary: str,
        description: Body | None = None,
        status: str | None = None,
        labels: Iterable[str] = (),
        *,
        issuetype: str = "Task",
        created: datetime | None = None,
        updated: datetime | None = None,
        assignee: User | None = None,
    ) -> str:
        with self._lock:
            record = self._projects.get(project)
            if record is None:
                raise ValueError(f"unknown project {project!r}; add_project first")
            workflow = self._workflow(project)
            status_name = self._workflow_status(workflow, status or workflow.statuses[0])
            _check_summary(summary)
            if description is not None:
                check_body("description", description)
            label_list = _check_labels(list(labels))
            created = _aware(created) if created else self.now()
            key = f"{project}-{record.next_number}"
            record.next_number += 1
            self._issues[key] = Issue(
                id=str(self._next_issue_id),
                key=key,
                project=project,
                summary=summary,
                description=copy.deepcopy(description),
                status=status_name,
                issuetype=issuetype,
                labels=label_list,
                created=created,
                updated=_aware(updated) if updated else created,
                reporter=HUMAN,
                assignee=assignee,
            )
            self._next_issue_id += 1
            return key

    def _workflow_status(self, workflow: Workflow, name: str) -> str:
        match = next((s for s in workflow.statuses if s.lower() == name.lower()), None)
        if match is None:
            raise ValueError(f"status {name!r} is not in the workflow {workflow.statuses}")
        return match

    def _find(self, key_or_id: str) -> Issue:
        issue = self._issues.get(key_or_id.upper())
        if issue is None and key_or_id.isdigit():
            issue = next((i for i in self._issues.values() if i.id == key_or_id), None)
        if issue is None:
            raise JiraApiError(404, [ISSUE_NOT_FOUND])
        return issue

    def issue(self, key_or_id: str) -> Issue:
        """A copy of the issue's state; raises `JiraApiError` (404) for an unknown key."""
        with self._lock:
            return copy.deepcopy(self._find(key_or_id))

    def issue_keys(self) -> list[str]:
        with self._lock:
            return list(self._issues)

    def set_status(self, key: str, status: str) -> None:
        """Move an issue as a person would in the UI, with no transition rules."""
        with self._lock:
            issue = self._find(key)
            target = self._workflow_status(self._workflow(issue.project), status)
            self._move(issue, target, None, by="human")

    def _move(self, issue: Issue, target: str, transition: Transition | None, by: str) -> None:
        now = self.now()
        self._transition_log.append(
            TransitionRecord(
                key=issue.key,
                from_status=issue.status,
                to_status=target,
                transition_id=transition.id if transition else None,
                transition_name=transition.name if transition else None,
                by=by,
                at=now,
            )
        )
        issue.status = target
        issue.updated = now

    def transitions(self, key: str) -> list[Transition]:
        with self._lock:
            issue = self._find(key)
            return [t for t in self._workflow(issue.project).transitions if t.available_from(issue.status)]

    def transition(self, key: str, transition_id: str, account: Account) -> TransitionRecord:
        with self._lock:
            issue = self._find(key)
            available = {t.id: t for t in self.transitions(key)}
            chosen = available.get(str(transition_id))
            if chosen is None:
                raise JiraApiError(400, [f"Transition id '{transition_id}' is not valid for this issue."])
            self._move(issue, chosen.to, chosen, by=account.user.email)
            return self._transition_log[-1]

    @property
    def transition_log(self) -> list[TransitionRecord]:
        with self._lock:
            return list(self._transition_log)

    def edit(self, key: str, changes: dict[str, Any], label_ops: list[tuple[str, Any]]) -> None:
        """Apply validated field values (`summary`, `description`, `labels`) and label operations."""
        with self._lock:
            issue = self._find(key)
            labels = list(issue.labels)
            if "labels" in changes:
                labels = list(changes["labels"])
            for op, value in label_ops:
                if op == "add" and value not in labels:
                    labels.append(value)
                elif op == "remove" and value in labels:
                    labels.remove(value)
                elif op == "set":
                    labels = list(value)
            labels = _check_labels(labels)
            if "summary" in changes:
                _check_summary(changes["summary"])
            if changes.get("description") is not None:
                check_body("description", changes["description"])
            issue.labels = labels
            issue.summary = changes.get("summary", issue.summary)
            issue.description = copy.deepcopy(changes.get("description", issue.description))
            issue.updated = self.now()

    # --- comments and links ---------------------------------------------------------------------------

    def add_comment(self, key: str, body: Body, author: User) -> Comment:
        with self._lock:
            issue = self._find(key)
            check_body("comment", body)
            now = self.now()
            comment = Comment(str(self._next_comment_id), copy.deepcopy(body), author, now, now)
            self._next_comment_id += 1
            issue.comments.append(comment)
            issue.updated = now
            return copy.deepcopy(comment)

    def comments(self, key: str) -> list[Comment]:
        with self._lock:
            return copy.deepcopy(self._find(key).comments)

    def add_remote_link(self, key: str, link: RemoteLink) -> tuple[RemoteLink, bool]:
        """Add a link, or replace the one with the same global id (Jira's upsert); True if created."""
        with self._lock:
            issue = self._find(key)
            for index, existing in enumerate(issue.remote_links):
                if link.global_id and existing.global_id == link.global_id:
                    link.id = existing.id
                    issue.remote_links[index] = copy.deepcopy(link)
                    return copy.deepcopy(link), False
            link.id = self._next_link_id
            self._next_link_id += 1
            issue.remote_links.append(copy.deepcopy(link))
            return copy.deepcopy(link), True

    def remote_links(self, key: str) -> list[RemoteLink]:
        with self._lock:
            return copy.deepcopy(self._find(key).remote_links)

    # --- search ---------------------------------------------------------------------------------------

    def search(self, query: str) -> list[Issue]:
        """Issues matching the JQL, in its order; raises `JiraApiError` (400) for unsupported JQL."""
        with self._lock:
            now = self.now()
            try:
                parsed = jql.parse(query)
                vocab = jql.Vocabulary(
                    projects=frozenset(
                        name.lower() for p in self._projects.values() for name in (p.key, p.name)
                    ),
                    statuses=frozenset(self._statuses),
                )
                matches = jql.compile_filter(parsed, vocab, now)
            except jql.JqlError as error:
                raise JiraApiError(400, [str(error)]) from error
            views = {key: self._view(issue) for key, issue in self._issues.items()}
            selected = [view for view in views.values() if matches(view)]
            return [copy.deepcopy(self._issues[view.key]) for view in jql.order(selected, parsed)]

    def _view(self, issue: Issue) -> jql.IssueView:
        return jql.IssueView(
            key=issue.key,
            project_key=issue.project,
            project_name=self._projects[issue.project].name,
            status=issue.status,
            status_category=self._statuses[issue.status.lower()].category,
            issuetype=issue.issuetype,
            labels=tuple(issue.labels),
            summary=issue.summary,
            created=issue.created,
            updated=issue.updated,
        )

    # --- request log ----------------------------------------------------------------------------------

    def log_request(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)


def _guess_category(name: str, index: int) -> StatusCategory:
    if index == 0:
        return "new"
    if name.lower() in ("done", "closed", "resolved"):
        return "done"
    return "indeterminate"


def _transition(spec: TransitionSpec, index: int) -> Transition:
    if isinstance(spec, Transition):
        return spec
    name, target, *rest = spec
    return Transition(
        id=str(11 + 10 * index), name=name, to=target, from_statuses=tuple(rest[0] if rest else ())
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_summary(summary: Any) -> None:
    if not isinstance(summary, str) or not summary.strip():
        raise JiraApiError(400, errors={"summary": "You must specify a summary of the issue."})
    if len(summary) > MAX_SUMMARY_CHARS:
        raise JiraApiError(400, errors={"summary": "Summary must be less than 255 characters."})
    if "\n" in summary or "\r" in summary:
        raise JiraApiError(
            400, errors={"summary": "The summary is invalid because it contains newline characters."}
        )


def _check_labels(labels: list[Any]) -> list[str]:
    for label in labels:
        if not isinstance(label, str) or not label:
            raise JiraApiError(400, errors={"labels": "Labels must be non-empty strings."})
        if any(char.isspace() for char in label):
            raise JiraApiError(
                400, errors={"labels": f"The label '{label}' contains spaces which is invalid."}
            )
        if len(label) > MAX_SUMMARY_CHARS:
            raise JiraApiError(400, errors={"labels": "The label must not exceed 255 characters."})
    return list(dict.fromkeys(labels))


def check_body(field: str, body: Any) -> None:
    if isinstance(body, str):
        if field == "comment" and not body.strip():
            raise JiraApiError(400, errors={"comment": "Comment body can not be empty!"})
        size = len(body)
    elif isinstance(body, dict) and body.get("type") == "doc" and isinstance(body.get("content"), list):
        # ADF is capped by its serialized size: stricter than counting its text, never looser.
        size = len(json.dumps(body, separators=(",", ":")))
    else:
        raise JiraApiError(
            400,
            errors={
                field: "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            },
        )
    if size > MAX_TEXT_CHARS:
        raise JiraApiError(
            400,
            errors={
                field: f"The entered text is too long. It exceeds the allowed limit of {MAX_TEXT_CHARS:,} characters."
            },
        )
