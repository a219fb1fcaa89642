"""JSON shapes of Jira Cloud REST resources, for API version 2 (text bodies) or 3 (ADF bodies).

v2 serves an ADF body as its plain text (real Jira converts it to wiki markup; the service must not
depend on wiki syntax either way), and v3 serves a plain-text body as ADF paragraphs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from standins.jira.models import Body, Comment, Issue, Project, RemoteLink, Status, Transition, User

_CATEGORIES = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {"id": 4, "key": "indeterminate", "colorName": "yellow", "name": "In Progress"},
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
_BLOCKS = {"paragraph", "heading", "listItem", "codeBlock", "blockquote", "tableRow", "rule", "panel"}
ISSUE_FIELDS = (
    "summary",
    "status",
    "description",
    "issuetype",
    "project",
    "labels",
    "created",
    "updated",
    "reporter",
    "assignee",
    "comment",
)


def timestamp(moment: datetime) -> str:
    """Jira's timestamp format: 2026-01-01T10:00:00.000+0000."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" + moment.strftime("%z")


def body(value: Body | None, version: str) -> Any:
    if value is None:
        return None
    if version == "3":
        return value if isinstance(value, dict) else text_to_adf(value)
    return value if isinstance(value, str) else adf_to_text(value)


def text_to_adf(text: str) -> dict[str, Any]:
    paragraphs = []
    for chunk in text.split("\n\n"):
        content: list[dict[str, Any]] = []
        for index, line in enumerate(chunk.split("\n")):
            if index:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def adf_to_text(doc: dict[str, Any]) -> str:
    """The document's text, one line per block; iterative so any nesting depth is safe."""
    out: list[str] = []
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if node == "\n":
            if out and not out[-1].endswith("\n"):
                out.append("\n")
            continue
        if not isinstance(node, dict):
            continue
        if node.get("type") == "hardBreak":
            out.append("\n")
        text = node.get("text")
        if isinstance(text, str):
            out.append(text)
        attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
        if node.get("type") in ("mention", "emoji", "status") and isinstance(attrs.get("text"), str):
            out.append(attrs["text"])
        if node.get("type") in _BLOCKS:
            stack.append("\n")
        content = node.get("content")
        if isinstance(content, list):
            stack.extend(reversed(content))
    return "".join(out).strip("\n")


def user(who: User, base: str, version: str) -> dict[str, Any]:
    return {
        "self": f"{base}/rest/api/{version}/user?accountId={who.account_id}",
        "accountId": who.account_id,
        "name": who.account_id,
        "emailAddress": who.email,
        "displayName": who.display_name,
        "active": True,
        "timeZone": "UTC",
        "accountType": "atlassian",
    }


def status(state: Status, base: str, version: str) -> dict[str, Any]:
    category = _CATEGORIES[state.category]
    return {
        "self": f"{base}/rest/api/{version}/status/{state.id}",
        "description": "",
        "iconUrl": f"{base}/images/icons/statuses/generic.png",
        "name": state.name,
        "id": state.id,
        "statusCategory": {"self": f"{base}/rest/api/{version}/statuscategory/{category['id']}", **category},
    }


def project(record: Project, base: str, version: str) -> dict[str, Any]:
    return {
        "self": f"{base}/rest/api/{version}/project/{record.id}",
        "id": record.id,
        "key": record.key,
        "name": record.name,
        "projectTypeKey": "software",
        "simplified": False,
    }


def comment(record: Comment, issue_id: str, base: str, version: str) -> dict[str, Any]:
    author = user(record.author, base, version)
    return {
        "self": f"{base}/rest/api/{version}/issue/{issue_id}/comment/{record.id}",
        "id": record.id,
        "author": author,
        "body": body(record.body, version),
        "updateAuthor": author,
        "created": timestamp(record.created),
        "updated": timestamp(record.updated),
        "jsdPublic": True,
    }


def comment_page(issue: Issue, base: str, version: str) -> dict[str, Any]:
    comments = [comment(c, issue.id, base, version) for c in issue.comments]
    return {"comments": comments, "maxResults": len(comments), "total": len(comments), "startAt": 0}


def transition(item: Transition, state: Status, base: str, version: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "to": status(state, base, version),
        "hasScreen": False,
        "isGlobal": not item.from_statuses,
        "isInitial": False,
        "isAvailable": True,
        "isConditional": False,
        "isLooped": False,
    }


def remote_link(link: RemoteLink, issue_id: str, base: str, version: str) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "id": link.id,
        "self": f"{base}/rest/api/{version}/issue/{issue_id}/remotelink/{link.id}",
        "object": link.object,
    }
    if link.global_id:
        shaped["globalId"] = link.global_id
    if link.application:
        shaped["application"] = link.application
    if link.relationship:
        shaped["relationship"] = link.relationship
    return shaped


def issue(
    record: Issue,
    state: Status,
    owner: Project,
    base: str,
    version: str,
    fields: set[str] | None,
) -> dict[str, Any]:
    """An issue resource; `fields` None means all fields, an empty set means none (ids only)."""
    values = {
        "summary": lambda: record.summary,
        "status": lambda: status(state, base, version),
        "description": lambda: body(record.description, version),
        "issuetype": lambda: {
            "self": f"{base}/rest/api/{version}/issuetype/10001",
            "id": "10001",
            "name": record.issuetype,
            "subtask": False,
            "hierarchyLevel": 0,
        },
        "project": lambda: project(owner, base, version),
        "labels": lambda: list(record.labels),
        "created": lambda: timestamp(record.created),
        "updated": lambda: timestamp(record.updated),
        "reporter": lambda: user(record.reporter, base, version),
        "assignee": lambda: user(record.assignee, base, version) if record.assignee else None,
        "comment": lambda: comment_page(record, base, version),
    }
    wanted = ISSUE_FIELDS if fields is None else [name for name in ISSUE_FIELDS if name in fields]
    shaped: dict[str, Any] = {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": record.id,
        "self": f"{base}/rest/api/{version}/issue/{record.id}",
        "key": record.key,
    }
    if fields is None or fields:
        shaped["fields"] = {name: values[name]() for name in wanted}
    return shaped


def field_list() -> list[dict[str, Any]]:
    kinds = {
        "summary": ("Summary", "string"),
        "status": ("Status", "status"),
        "description": ("Description", "string"),
        "issuetype": ("Issue Type", "issuetype"),
        "project": ("Project", "project"),
        "labels": ("Labels", "array"),
        "created": ("Created", "datetime"),
        "updated": ("Updated", "datetime"),
        "reporter": ("Reporter", "user"),
        "assignee": ("Assignee", "user"),
        "comment": ("Comment", "comments-page"),
    }
    return [
        {
            "id": name,
            "key": name,
            "name": label,
            "custom": False,
            "orderable": name not in ("created", "updated", "status"),
            "navigable": True,
            "searchable": True,
            "clauseNames": [name] if name != "issuetype" else ["issuetype", "type"],
            "schema": {"type": kind, "system": name},
        }
        for name, (label, kind) in kinds.items()
    ]
