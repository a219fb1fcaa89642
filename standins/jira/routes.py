"""The REST endpoints: each turns a parsed request into store calls and a JSON answer.

Every body and parameter is validated here before the store changes anything, so a request that
fails (400) leaves no partial effect, e.g. a transition whose comment is invalid does not move the issue.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standins.jira import jql, render
from standins.jira.models import Account, Issue, JiraApiError, RemoteLink
from standins.jira.store import JiraStore, check_body

DEFAULT_PAGE = 50
EDITABLE = {"summary", "description", "labels"}
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
BAD_TOKEN = "The provided next page token is invalid or expired."


@dataclass
class Request:
    method: str
    path: str  # the part after /rest/api/<version>/
    version: str  # "2" or "3" ("latest" is served as 2)
    query: dict[str, list[str]]
    body: Any
    account: Account | None
    base: str  # the stand-in's base URL, for "self" links
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern

    def arg(self, name: str) -> Any:
        """A parameter from the JSON body (POST searches) or else the query string."""
        if isinstance(self.body, dict) and name in self.body:
            return self.body[name]
        values = self.query.get(name)
        return values if name == "fields" else (values[-1] if values else None)


Response = tuple[int, Any]
Handler = Callable[[JiraStore, Request, int], Response]


def _int_arg(request: Request, name: str, default: int) -> int:
    raw = request.arg(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise JiraApiError(400, [f"The value '{raw}' is not valid for the parameter '{name}'."]) from None
    if value < 0:
        raise JiraApiError(400, [f"The parameter '{name}' must not be negative."])
    return value


def _fields_arg(request: Request, default: set[str] | None) -> set[str] | None:
    """`fields` as a set of names; None means all. Accepts lists, repeats and comma-separated values."""
    raw = request.arg("fields")
    if raw is None:
        return default
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(item, str) for item in items):
        raise JiraApiError(400, ["The 'fields' parameter must be a list of field names."])
    names = {name.strip() for item in items for name in item.split(",") if name.strip()}
    if not names:
        return default
    if names & {"*all", "*navigable"}:
        return set(render.ISSUE_FIELDS) - {name[1:] for name in names if name.startswith("-")}
    return names


def _body_dict(request: Request) -> dict[str, Any]:
    if not isinstance(request.body, dict):
        raise JiraApiError(400, ["The request body must be a JSON object."])
    return request.body


def _issue_json(store: JiraStore, request: Request, issue: Issue, fields: set[str] | None) -> dict[str, Any]:
    owner = store.project(issue.project)
    assert owner is not None  # issues are only created in existing projects
    return render.issue(issue, store.status(issue.status), owner, request.base, request.version, fields)


# --- server and users ----------------------------------------------------------------------------------


def server_info(store: JiraStore, request: Request, deployment: str) -> Response:
    cloud = deployment == "Cloud"
    return 200, {
        "baseUrl": request.base,
        "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.0",
        "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 0],
        "deploymentType": deployment,
        "buildNumber": 100275 if cloud else 9120000,
        "buildDate": "2026-01-01T00:00:00.000+0000",
        "serverTime": render.timestamp(store.now()),
        "scmInfo": "0" * 40,
        "serverTitle": "Jira stand-in",
    }


def myself(_store: JiraStore, request: Request, _cap: int) -> Response:
    assert request.account is not None
    return 200, render.user(request.account.user, request.base, request.version)


def fields(_store: JiraStore, _request: Request, _cap: int) -> Response:
    return 200, render.field_list()


def projects(store: JiraStore, request: Request, _cap: int) -> Response:
    return 200, [render.project(p, request.base, request.version) for p in store.projects()]


def project(store: JiraStore, request: Request, _cap: int) -> Response:
    found = store.project(request.params["project"])
    if found is None:
        raise JiraApiError(404, [f"No project could be found with key '{request.params['project']}'."])
    return 200, render.project(found, request.base, request.version)


_ROLE_IDS = {"Administrators": "10002", "Developers": "10001", "Users": "10000"}


def _role_id(name: str) -> str:
    return _ROLE_IDS.get(name) or str(10100 + int(hashlib.sha256(name.encode()).hexdigest()[:4], 16))


def group(store: JiraStore, request: Request, _cap: int) -> Response:
    name = request.arg("groupname")
    members = store.group_members(str(name or ""))
    if members is None:
        raise JiraApiError(404, [f"The group '{name}' does not exist."])
    items = [render.user(who, request.base, request.version) for who in members]
    return 200, {
        "name": name,
        "self": f"{request.base}/rest/api/{request.version}/group?groupname={name}",
        "users": {"size": len(items), "items": items, "max-results": 50, "start-index": 0,
                  "end-index": max(len(items) - 1, 0)},
    }  # fmt: skip


def _project_or_404(store: JiraStore, key: str) -> Any:
    found = store.project(key)
    if found is None:
        raise JiraApiError(404, [f"No project could be found with key '{key}'."])
    return found


def project_roles(store: JiraStore, request: Request, _cap: int) -> Response:
    owner = _project_or_404(store, request.params["project"])
    base = f"{request.base}/rest/api/{request.version}/project/{owner.id}/role"
    return 200, {name: f"{base}/{_role_id(name)}" for name in store.project_roles(owner.key)}


def project_role(store: JiraStore, request: Request, _cap: int) -> Response:
    owner = _project_or_404(store, request.params["project"])
    roles = store.project_roles(owner.key)
    name = next((n for n in roles if _role_id(n) == request.params["role"]), None)
    if name is None:
        raise JiraApiError(404, [f"No role could be found with id '{request.params['role']}'."])
    actors = [
        {
            "id": index + 1,
            "displayName": who.display_name,
            "type": "atlassian-user-role-actor",
            "name": who.account_id,
            "actorUser": {"accountId": who.account_id},
        }
        for index, who in enumerate(roles[name])
    ]
    return 200, {
        "self": f"{request.base}/rest/api/{request.version}/project/{owner.id}/role/{_role_id(name)}",
        "name": name,
        "id": int(_role_id(name)),
        "actors": actors,
    }


# --- search --------------------------------------------------------------------------------------------


def _jql_arg(request: Request) -> str:
    query = request.arg("jql")
    if query is None:
        return ""
    if not isinstance(query, str):
        raise JiraApiError(400, ["The 'jql' parameter must be a string."])
    return query


def search(store: JiraStore, request: Request, cap: int) -> Response:
    """The classic offset-paginated search (Jira Server/DC, and Cloud before the enhanced search)."""
    query = _jql_arg(request)
    start = _int_arg(request, "startAt", 0)
    size = min(_int_arg(request, "maxResults", DEFAULT_PAGE), cap)
    wanted = _fields_arg(request, None)
    found = store.search(query)
    return 200, {
        "expand": "schema,names",
        "startAt": start,
        "maxResults": size,
        "total": len(found),
        "issues": [_issue_json(store, request, issue, wanted) for issue in found[start : start + size]],
    }


def search_jql(store: JiraStore, request: Request, cap: int) -> Response:
    """The enhanced search (Cloud): bounded JQL, `nextPageToken` pages, only ids unless `fields` asked."""
    query = _jql_arg(request)
    try:
        if jql.parse(query).where is None:
            raise JiraApiError(400, [UNBOUNDED])
    except jql.JqlError as error:
        raise JiraApiError(400, [str(error)]) from error
    size = min(_int_arg(request, "maxResults", DEFAULT_PAGE), cap)
    start = _decode_token(request.arg("nextPageToken"), query)
    wanted = _fields_arg(request, set())
    found = store.search(query)
    page = found[start : start + size]
    answer: dict[str, Any] = {"issues": [_issue_json(store, request, issue, wanted) for issue in page]}
    is_last = start + size >= len(found)
    answer["isLast"] = is_last
    if not is_last:
        answer["nextPageToken"] = _encode_token(start + size, query)
    return 200, answer


def _query_hash(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def _encode_token(offset: int, query: str) -> str:
    raw = json.dumps({"offset": offset, "jql": _query_hash(query)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: Any, query: str) -> int:
    if token in (None, ""):
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        offset = data["offset"]
        valid = isinstance(offset, int) and offset >= 0 and data["jql"] == _query_hash(query)
    except (ValueError, TypeError, KeyError, binascii.Error):
        valid = False
    if not valid:
        raise JiraApiError(400, [BAD_TOKEN])
    return offset


# --- issues --------------------------------------------------------------------------------------------


def get_issue(store: JiraStore, request: Request, _cap: int) -> Response:
    issue = store.issue(request.params["issue"])
    return 200, _issue_json(store, request, issue, _fields_arg(request, None))


def edit_issue(store: JiraStore, request: Request, _cap: int) -> Response:
    body = _body_dict(request)
    key = store.issue(request.params["issue"]).key
    changes, label_ops, comments = _edits(body, request.version)
    store.edit(key, changes, label_ops)
    assert request.account is not None
    for comment_body in comments:
        store.add_comment(key, comment_body, request.account.user)
    return 204, None


def _edits(body: dict[str, Any], version: str) -> tuple[dict[str, Any], list[tuple[str, Any]], list[Any]]:
    """Validate `fields` and `update` of an edit; returns (field values, label operations, comments)."""
    values = body.get("fields") or {}
    update = body.get("update") or {}
    if not isinstance(values, dict) or not isinstance(update, dict):
        raise JiraApiError(400, ["'fields' and 'update' must be JSON objects."])
    errors = {
        name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        for name in [*values, *update]
        if name not in EDITABLE | {"comment"} or (name == "comment" and name in values)
    }
    errors |= {
        name: f"Field '{name}' cannot be set in both 'fields' and 'update'."
        for name in set(values) & set(update)
    }
    if errors:
        raise JiraApiError(400, errors=errors)
    changes = dict(values)
    label_ops: list[tuple[str, Any]] = []
    comments: list[Any] = []
    for name, operations in update.items():
        if not isinstance(operations, list) or not all(
            isinstance(op, dict) and len(op) == 1 for op in operations
        ):
            raise JiraApiError(400, errors={name: "Each update operation must be an object with one verb."})
        for operation in operations:
            verb, value = next(iter(operation.items()))
            if name == "labels" and verb in ("add", "remove", "set"):
                label_ops.append((verb, value))
            elif name in ("summary", "description") and verb == "set":
                changes[name] = value
            elif name == "comment" and verb == "add" and isinstance(value, dict):
                comments.append(_versioned_body(value.get("body"), version, "comment"))
            else:
                raise JiraApiError(
                    400, errors={name: f"The operation '{verb}' is not supported for '{name}'."}
                )
    if "labels" in changes and not isinstance(changes["labels"], list):
        raise JiraApiError(400, errors={"labels": "The 'labels' field takes a list of strings."})
    if changes.get("description") is not None:
        changes["description"] = _versioned_body(changes["description"], version, "description")
    for verb, value in label_ops:
        if (verb == "set") != isinstance(value, list):
            raise JiraApiError(400, errors={"labels": f"Invalid value for the label operation '{verb}'."})
    return changes, label_ops, comments


def _versioned_body(value: Any, version: str, name: str) -> Any:
    """v2 takes text, v3 takes an ADF document, as in Jira Cloud."""
    if version == "3" and not isinstance(value, dict):
        raise JiraApiError(
            400,
            errors={
                name: "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            },
        )
    if version != "3" and not isinstance(value, str):
        message = (
            "Comment body can not be empty!" if name == "comment" else f"The '{name}' field takes a string."
        )
        raise JiraApiError(400, errors={name: message})
    check_body(name, value)
    return value


# --- transitions ---------------------------------------------------------------------------------------


def get_transitions(store: JiraStore, request: Request, _cap: int) -> Response:
    available = store.transitions(request.params["issue"])
    wanted = request.arg("transitionId")
    shaped = [
        render.transition(t, store.status(t.to), request.base, request.version)
        for t in available
        if wanted is None or t.id == str(wanted)
    ]
    return 200, {"expand": "transitions", "transitions": shaped}


def post_transition(store: JiraStore, request: Request, _cap: int) -> Response:
    body = _body_dict(request)
    key = store.issue(request.params["issue"]).key
    chosen = body.get("transition")
    transition_id = chosen.get("id") if isinstance(chosen, dict) else None
    if not isinstance(transition_id, str | int) or isinstance(transition_id, bool) or transition_id == "":
        raise JiraApiError(400, ["Missing 'transition' identifier"])
    # Our transitions have no screens, so (as in Jira) no field may be set during one.
    values = body.get("fields") or {}
    if not isinstance(values, dict):
        raise JiraApiError(400, ["'fields' must be a JSON object."])
    if values:
        raise JiraApiError(
            400,
            errors={
                name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                for name in values
            },
        )
    update = body.get("update") or {}
    if not isinstance(update, dict) or set(update) - {"comment"}:
        raise JiraApiError(400, ["Only a comment may be added during a transition."])
    _changes, _labels, comments = _edits({"update": update}, request.version)
    assert request.account is not None
    store.transition(key, str(transition_id), request.account)
    for comment_body in comments:
        store.add_comment(key, comment_body, request.account.user)
    return 204, None


# --- comments and remote links -------------------------------------------------------------------------


def get_comments(store: JiraStore, request: Request, _cap: int) -> Response:
    issue = store.issue(request.params["issue"])
    start = _int_arg(request, "startAt", 0)
    size = _int_arg(request, "maxResults", 5000)
    ordered = list(reversed(issue.comments)) if request.arg("orderBy") == "-created" else issue.comments
    page = ordered[start : start + size]
    return 200, {
        "comments": [render.comment(c, issue.id, request.base, request.version) for c in page],
        "maxResults": size,
        "total": len(issue.comments),
        "startAt": start,
    }


def get_comment(store: JiraStore, request: Request, _cap: int) -> Response:
    issue = store.issue(request.params["issue"])
    found = next((c for c in issue.comments if c.id == request.params["comment"]), None)
    if found is None:
        raise JiraApiError(404, ["Can not find a comment for the id: " + request.params["comment"] + "."])
    return 200, render.comment(found, issue.id, request.base, request.version)


def post_comment(store: JiraStore, request: Request, _cap: int) -> Response:
    body = _body_dict(request)
    issue = store.issue(request.params["issue"])
    text = _versioned_body(body.get("body"), request.version, "comment")
    assert request.account is not None
    created = store.add_comment(issue.key, text, request.account.user)
    return 201, render.comment(created, issue.id, request.base, request.version)


def get_remote_links(store: JiraStore, request: Request, _cap: int) -> Response:
    issue = store.issue(request.params["issue"])
    return 200, [
        render.remote_link(link, issue.id, request.base, request.version) for link in issue.remote_links
    ]


def post_remote_link(store: JiraStore, request: Request, _cap: int) -> Response:
    body = _body_dict(request)
    issue = store.issue(request.params["issue"])
    target = body.get("object")
    errors = {}
    if not isinstance(target, dict) or not isinstance(target.get("url"), str) or not target["url"]:
        errors["url"] = "'url' is required."
    if not isinstance(target, dict) or not isinstance(target.get("title"), str) or not target["title"]:
        errors["title"] = "'title' is required."
    global_id = body.get("globalId")
    if global_id is not None and not isinstance(global_id, str):
        errors["globalId"] = "'globalId' must be a string."
    if errors:
        raise JiraApiError(400, errors=errors)
    application = body.get("application") if isinstance(body.get("application"), dict) else None
    relationship = body.get("relationship") if isinstance(body.get("relationship"), str) else None
    link, created = store.add_remote_link(
        issue.key, RemoteLink(0, target, global_id, application, relationship)
    )
    shaped = render.remote_link(link, issue.id, request.base, request.version)
    return (201 if created else 200), {"id": link.id, "self": shaped["self"]}


_ISSUE = r"issue/(?P<issue>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("GET", re.compile(r"myself"), myself),
    ("GET", re.compile(r"field"), fields),
    ("GET", re.compile(r"project"), projects),
    ("GET", re.compile(r"project/(?P<project>[^/]+)"), project),
    ("GET", re.compile(r"project/(?P<project>[^/]+)/role"), project_roles),
    ("GET", re.compile(r"project/(?P<project>[^/]+)/role/(?P<role>[^/]+)"), project_role),
    ("GET", re.compile(r"group"), group),
    ("GET", re.compile(r"search"), search),
    ("POST", re.compile(r"search"), search),
    ("GET", re.compile(r"search/jql"), search_jql),
    ("POST", re.compile(r"search/jql"), search_jql),
    ("GET", re.compile(_ISSUE), get_issue),
    ("PUT", re.compile(_ISSUE), edit_issue),
    ("GET", re.compile(_ISSUE + r"/transitions"), get_transitions),
    ("POST", re.compile(_ISSUE + r"/transitions"), post_transition),
    ("GET", re.compile(_ISSUE + r"/comment"), get_comments),
    ("POST", re.compile(_ISSUE + r"/comment"), post_comment),
    ("GET", re.compile(_ISSUE + r"/comment/(?P<comment>[^/]+)"), get_comment),
    ("GET", re.compile(_ISSUE + r"/remotelink"), get_remote_links),
    ("POST", re.compile(_ISSUE + r"/remotelink"), post_remote_link),
]
