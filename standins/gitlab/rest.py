"""REST v4 routes. Each handler returns (status, json body[, extra headers]); GitLab errors are raised
as ApiError. Paths are matched while still percent-encoded so `group%2Fname` stays one segment."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from standins.gitlab import serialize as ser
from standins.gitlab.errors import ApiError, missing_param, not_found
from standins.gitlab.models import MergeRequest, Note, Project, User
from standins.gitlab.pagination import paginate
from standins.gitlab.params import as_bool, as_int
from standins.gitlab.store import Store

GITLAB_VERSION = {
    "version": "17.11.0-ee",
    "revision": "standin",
    "kas": {"enabled": False},
    "enterprise": True,
}


@dataclass
class Ctx:
    store: Store
    user: User
    method: str
    path: str
    query: dict[str, Any]
    body: dict[str, Any]
    args: list[str]

    def param(self, name: str, default: Any = None) -> Any:
        # Grape merges query and body; the body wins.
        return self.body.get(name, self.query.get(name, default))

    def required(self, name: str) -> Any:
        value = self.param(name)
        if value is None or value == "":
            raise missing_param(name)
        return value

    def project(self) -> Project:
        return self.store.project(unquote(self.args[0]))

    def mr(self) -> MergeRequest:
        return self.store.mr(self.project(), as_int(self.args[1], "merge_request_iid"))

    def page(self, items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        chunk, headers = paginate(items, self.query, self.store.base_url, self.path)
        return 200, chunk, headers


Result = tuple[int, Any] | tuple[int, Any, dict[str, str]]
Handler = Callable[[Ctx], Result]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []
_SEG = r"([^/]+)"


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    regex = re.compile("^/api/v4" + pattern.replace(":seg", _SEG).replace(":rest", "(.+)") + "$")

    def register(fn: Handler) -> Handler:
        ROUTES.append((method, regex, fn))
        return fn

    return register


def dispatch(ctx_factory: Callable[[list[str]], Ctx], method: str, path: str) -> Result:
    path_matched = False
    for route_method, regex, fn in ROUTES:
        match = regex.match(path)
        if match:
            path_matched = True
            if route_method == method:
                return fn(ctx_factory(list(match.groups())))
    if path_matched:
        raise ApiError(405, "405 Method Not Allowed")
    raise ApiError(404, "404 Not Found", key="error")


# --- instance, users, projects ----------------------------------------------------------------

MR = "/projects/:seg/merge_requests/:seg"


@route("GET", "/version")
def get_version(ctx: Ctx) -> Result:
    return 200, GITLAB_VERSION


@route("GET", "/user")
def get_user(ctx: Ctx) -> Result:
    return 200, ser.user_full(ctx.user, ctx.store.base_url)


@route("GET", "/users")
def list_users(ctx: Ctx) -> Result:
    with ctx.store.lock:
        users = list(ctx.store.users.values())
    if (username := ctx.param("username")) is not None:
        users = [u for u in users if u.username.lower() == str(username).lower()]
    return ctx.page([u.ref() for u in users])


@route("GET", "/users/:seg")
def get_user_by_id(ctx: Ctx) -> Result:
    user = ctx.store.users.get(as_int(ctx.args[0], "id"))
    if user is None:
        raise not_found("User")
    return 200, user.ref()


@route("GET", "/projects/:seg")
def get_project(ctx: Ctx) -> Result:
    return 200, ser.project(ctx.project(), ctx.store.base_url)


@route("GET", "/projects/:seg/members/all")
def list_members(ctx: Ctx) -> Result:
    project = ctx.project()
    members = [
        ser.member(ctx.store.users[uid], lvl, ctx.store.base_url) for uid, lvl in project.members.items()
    ]
    return ctx.page(members)


@route("GET", "/projects/:seg/members/all/:seg")
def get_member(ctx: Ctx) -> Result:
    project = ctx.project()
    user_id = as_int(ctx.args[1], "user_id")
    level = project.members.get(user_id)
    if level is None:
        raise not_found()
    return 200, ser.member(ctx.store.users[user_id], level, ctx.store.base_url)


# --- repository -------------------------------------------------------------------------------


@route("GET", "/projects/:seg/repository/branches")
def list_branches(ctx: Ctx) -> Result:
    project = ctx.project()
    branches = sorted(project.repo.branches().items())
    if search := ctx.param("search"):
        branches = [(n, s) for n, s in branches if str(search) in n]
    return ctx.page([_branch(ctx, project, name, sha) for name, sha in branches])


@route("GET", "/projects/:seg/repository/branches/:rest")
def get_branch(ctx: Ctx) -> Result:
    project = ctx.project()
    name = unquote(ctx.args[1])
    sha = project.repo.branch_sha(name) if not name.startswith("-") else None
    if sha is None:
        raise not_found("Branch")
    return 200, _branch(ctx, project, name, sha)


def _branch(ctx: Ctx, project: Project, name: str, sha: str) -> dict[str, Any]:
    commit = ser.commit(project.repo.commit_info(sha), project.path_with_namespace, ctx.store.base_url)
    rules = ctx.store.protection_of(project, name)
    return {
        "name": name,
        "commit": commit,
        "merged": False,
        "protected": bool(rules),
        "default": name == project.default_branch,
        "developers_can_push": any(e.access_level == 30 for r in rules for e in r.push),
        "developers_can_merge": any(e.access_level == 30 for r in rules for e in r.merge),
        "can_push": ctx.store.may_push(project, name, ctx.user),
        "web_url": f"{ctx.store.base_url}/{project.path_with_namespace}/-/tree/{name}",
    }


@route("GET", "/projects/:seg/protected_branches")
def list_protected_branches(ctx: Ctx) -> Result:
    project = ctx.project()
    with ctx.store.lock:
        rules = list(project.protected)
    if search := ctx.param("search"):
        rules = [r for r in rules if str(search) in r.name]
    return ctx.page([ser.protected_branch(r, ctx.store) for r in rules])


@route("GET", "/projects/:seg/protected_branches/:rest")
def get_protected_branch(ctx: Ctx) -> Result:
    # The rule's own name (a wildcard rule is fetched as `release%2F*`), not a branch it matches.
    project = ctx.project()
    name = unquote(ctx.args[1])
    with ctx.store.lock:
        rule = next((r for r in project.protected if r.name == name), None)
    if rule is None:
        raise not_found()
    return 200, ser.protected_branch(rule, ctx.store)


@route("GET", "/groups/:seg/members/all/:seg")
def get_group_member(ctx: Ctx) -> Result:
    group = ctx.store.groups.get(as_int(unquote(ctx.args[0]), "id"))
    if group is None:
        raise not_found("Group")
    user_id = as_int(ctx.args[1], "user_id")
    level = group.members.get(user_id)
    if level is None:
        raise not_found()
    return 200, ser.member(ctx.store.users[user_id], level, ctx.store.base_url)


def _resolve(project: Project, ref: str, what: str = "Commit") -> str:
    sha = project.repo.ref_sha(ref) if ref and not ref.startswith("-") else None
    if sha is None:
        raise not_found(what)
    return sha


@route("GET", "/projects/:seg/repository/files/:seg/raw")
def get_raw_file(ctx: Ctx) -> Result:
    project = ctx.project()
    ref = str(ctx.param("ref") or project.default_branch)
    sha = _resolve(project, ref)
    data = project.repo.read_blob(sha, unquote(ctx.args[1]))
    if data is None:
        raise not_found("File")
    return 200, data


@route("GET", "/projects/:seg/repository/commits/:seg")
def get_commit(ctx: Ctx) -> Result:
    project = ctx.project()
    sha = _resolve(project, unquote(ctx.args[1]))
    return 200, ser.commit(project.repo.commit_info(sha), project.path_with_namespace, ctx.store.base_url)


@route("GET", "/projects/:seg/repository/compare")
def compare(ctx: Ctx) -> Result:
    project = ctx.project()
    from_sha = _resolve(project, str(ctx.required("from")), "Ref")
    to_sha = _resolve(project, str(ctx.required("to")), "Ref")
    straight = as_bool(ctx.param("straight", False)) or False
    base = from_sha if straight else (project.repo.merge_base(from_sha, to_sha) or from_sha)
    with ctx.store.lock:
        files = ctx.store.file_diffs(project, base, to_sha)
    commits = list(reversed(project.repo.commits_between(from_sha, to_sha)))
    path, url = project.path_with_namespace, ctx.store.base_url
    return 200, {
        "commit": ser.commit(commits[-1], path, url) if commits else None,
        "commits": [ser.commit(c, path, url) for c in commits],
        "diffs": [ser.file_diff(f) for f in files],
        "compare_timeout": False,
        "compare_same_ref": from_sha == to_sha,
        "web_url": f"{url}/{path}/-/compare/{from_sha}...{to_sha}",
    }


# --- merge requests ---------------------------------------------------------------------------


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@route("GET", "/projects/:seg/merge_requests")
def list_mrs(ctx: Ctx) -> Result:
    project = ctx.project()
    with ctx.store.lock:
        mrs = [mr for (pid, _), mr in ctx.store.mrs.items() if pid == project.id]
    state = ctx.param("state", "all")
    if state != "all":
        mrs = [mr for mr in mrs if mr.state == state]
    for key in ("source_branch", "target_branch"):
        if (wanted := ctx.param(key)) is not None:
            mrs = [mr for mr in mrs if getattr(mr, key) == wanted]
    if (after := ctx.param("updated_after")) is not None:
        try:
            threshold = _ts(str(after))
        except ValueError:
            raise ApiError(400, "updated_after is invalid", key="error") from None
        mrs = [mr for mr in mrs if _ts(mr.updated_at) > threshold]
    order_by = ctx.param("order_by", "created_at")
    if order_by not in ("created_at", "updated_at"):
        raise ApiError(400, "order_by does not have a valid value", key="error")
    sort = ctx.param("sort", "desc")
    if sort not in ("asc", "desc"):
        raise ApiError(400, "sort does not have a valid value", key="error")
    mrs.sort(key=lambda mr: (getattr(mr, order_by), mr.id), reverse=sort == "desc")
    return ctx.page([ser.merge_request(mr, ctx.store.base_url) for mr in mrs])


@route("POST", "/projects/:seg/merge_requests")
def create_mr(ctx: Ctx) -> Result:
    project = ctx.project()
    source = str(ctx.required("source_branch"))
    target = str(ctx.required("target_branch"))
    title = ctx.required("title")
    description = ctx.param("description", "")
    if not isinstance(title, str) or not isinstance(description, str):
        raise ApiError(400, "title is invalid", key="error")
    mr = ctx.store.create_mr(project, source, target, title, description, ctx.user, False)
    return 201, ser.merge_request(mr, ctx.store.base_url)


@route("GET", MR)
def get_mr(ctx: Ctx) -> Result:
    return 200, ser.merge_request(ctx.mr(), ctx.store.base_url)


@route("PUT", MR)
def update_mr(ctx: Ctx) -> Result:
    mr = ctx.mr()
    changes = {k: ctx.param(k) for k in ("title", "description", "state_event") if ctx.param(k) is not None}
    return 200, ser.merge_request(ctx.store.update_mr(mr, ctx.user, changes), ctx.store.base_url)


@route("GET", MR + "/changes")
def mr_changes(ctx: Ctx) -> Result:
    mr = ctx.mr()
    body = ser.merge_request(mr, ctx.store.base_url)
    body["changes"] = [ser.file_diff(f) for f in mr.latest.files]
    body["overflow"] = False
    return 200, body


@route("GET", MR + "/diffs")
def mr_diffs(ctx: Ctx) -> Result:
    return ctx.page([ser.file_diff(f) for f in ctx.mr().latest.files])


@route("GET", MR + "/versions")
def mr_versions(ctx: Ctx) -> Result:
    mr = ctx.mr()
    return ctx.page([ser.version(v, mr) for v in reversed(mr.versions)])


@route("GET", MR + "/versions/:seg")
def mr_version(ctx: Ctx) -> Result:
    mr = ctx.mr()
    version_id = as_int(ctx.args[2], "version_id")
    version = next((v for v in mr.versions if v.id == version_id), None)
    if version is None:
        raise not_found("Merge Request Diff")
    path, url = mr.project.path_with_namespace, ctx.store.base_url
    commits = mr.project.repo.commits_between(version.base_sha, version.head_sha)
    return 200, {
        **ser.version(version, mr),
        "commits": [ser.commit(c, path, url) for c in commits],
        "diffs": [ser.file_diff(f) for f in version.files],
    }


@route("GET", MR + "/commits")
def mr_commits(ctx: Ctx) -> Result:
    mr = ctx.mr()
    latest = mr.latest
    commits = mr.project.repo.commits_between(latest.base_sha, latest.head_sha)
    return ctx.page([ser.commit(c, mr.project.path_with_namespace, ctx.store.base_url) for c in commits])


# --- discussions and notes --------------------------------------------------------------------


@route("GET", MR + "/discussions")
def list_discussions(ctx: Ctx) -> Result:
    mr = ctx.mr()
    with ctx.store.lock:
        items = [ser.discussion(d, mr) for d in mr.discussions]
    return ctx.page(items)


@route("POST", MR + "/discussions")
def create_discussion(ctx: Ctx) -> Result:
    mr = ctx.mr()
    body = ctx.required("body")
    position = ctx.param("position")
    discussion = ctx.store.create_discussion(mr, ctx.user, body, position, individual=False)
    return 201, ser.discussion(discussion, mr)


@route("GET", MR + "/discussions/:seg")
def get_discussion(ctx: Ctx) -> Result:
    mr = ctx.mr()
    return 200, ser.discussion(ctx.store.discussion(mr, unquote(ctx.args[2])), mr)


@route("PUT", MR + "/discussions/:seg")
def resolve_discussion(ctx: Ctx) -> Result:
    mr = ctx.mr()
    resolved = as_bool(ctx.required("resolved"))
    if resolved is None:
        raise ApiError(400, "resolved is invalid", key="error")
    return 200, ser.discussion(ctx.store.resolve(mr, unquote(ctx.args[2]), ctx.user, resolved), mr)


@route("POST", MR + "/discussions/:seg/notes")
def reply(ctx: Ctx) -> Result:
    mr = ctx.mr()
    note = ctx.store.reply(mr, unquote(ctx.args[2]), ctx.user, ctx.required("body"))
    return 201, ser.note(note, mr)


def _discussion_note(ctx: Ctx) -> tuple[MergeRequest, Note]:
    mr = ctx.mr()
    discussion_id = unquote(ctx.args[2])
    ctx.store.discussion(mr, discussion_id)
    return mr, ctx.store.note(mr, as_int(ctx.args[3], "note_id"), discussion_id)


@route("GET", MR + "/discussions/:seg/notes/:seg")
def get_discussion_note(ctx: Ctx) -> Result:
    mr, note = _discussion_note(ctx)
    return 200, ser.note(note, mr)


@route("PUT", MR + "/discussions/:seg/notes/:seg")
def edit_discussion_note(ctx: Ctx) -> Result:
    mr, note = _discussion_note(ctx)
    if (resolved := ctx.param("resolved")) is not None and ctx.param("body") is None:
        flag = as_bool(resolved)
        if flag is None:
            raise ApiError(400, "resolved is invalid", key="error")
        ctx.store.resolve(mr, note.discussion_id, ctx.user, flag)
        return 200, ser.note(note, mr)
    return 200, ser.note(ctx.store.edit_note(mr, note, ctx.user, ctx.required("body")), mr)


@route("DELETE", MR + "/discussions/:seg/notes/:seg")
def delete_discussion_note(ctx: Ctx) -> Result:
    mr, note = _discussion_note(ctx)
    ctx.store.delete_note(mr, note, ctx.user)
    return 204, None


@route("GET", MR + "/notes")
def list_notes(ctx: Ctx) -> Result:
    mr = ctx.mr()
    order_by = ctx.param("order_by", "created_at")
    if order_by not in ("created_at", "updated_at"):
        raise ApiError(400, "order_by does not have a valid value", key="error")
    notes = sorted(ctx.store.all_notes(mr), key=lambda n: (getattr(n, order_by), n.id))
    if ctx.param("sort", "desc") == "desc":
        notes.reverse()
    return ctx.page([ser.note(n, mr) for n in notes])


@route("POST", MR + "/notes")
def create_note(ctx: Ctx) -> Result:
    mr = ctx.mr()
    discussion = ctx.store.create_discussion(mr, ctx.user, ctx.required("body"), None, individual=True)
    return 201, ser.note(discussion.notes[0], mr)


def _mr_note(ctx: Ctx) -> tuple[MergeRequest, Note]:
    mr = ctx.mr()
    return mr, ctx.store.note(mr, as_int(ctx.args[2], "note_id"))


@route("GET", MR + "/notes/:seg")
def get_note(ctx: Ctx) -> Result:
    mr, note = _mr_note(ctx)
    return 200, ser.note(note, mr)


@route("PUT", MR + "/notes/:seg")
def edit_note(ctx: Ctx) -> Result:
    mr, note = _mr_note(ctx)
    return 200, ser.note(ctx.store.edit_note(mr, note, ctx.user, ctx.required("body")), mr)


@route("DELETE", MR + "/notes/:seg")
def delete_note(ctx: Ctx) -> Result:
    mr, note = _mr_note(ctx)
    ctx.store.delete_note(mr, note, ctx.user)
    return 204, None


# --- draft notes (a review published as one batch) -----------------------------------------------


@route("GET", MR + "/draft_notes")
def list_drafts(ctx: Ctx) -> Result:
    mr = ctx.mr()
    return ctx.page([ser.draft_note(d, mr) for d in ctx.store.drafts_of(mr, ctx.user)])


@route("POST", MR + "/draft_notes")
def create_draft(ctx: Ctx) -> Result:
    mr = ctx.mr()
    resolve = as_bool(ctx.param("resolve_discussion", False))
    if resolve is None:
        raise ApiError(400, "resolve_discussion is invalid", key="error")
    draft = ctx.store.create_draft(
        mr, ctx.user, ctx.required("note"),
        position=ctx.param("position"), in_reply_to=ctx.param("in_reply_to_discussion_id"),
        resolve_discussion=resolve, commit_id=ctx.param("commit_id"),
    )  # fmt: skip
    return 201, ser.draft_note(draft, mr)


@route("POST", MR + "/draft_notes/bulk_publish")
def bulk_publish_drafts(ctx: Ctx) -> Result:
    note = ctx.param("note")
    ctx.store.bulk_publish(ctx.mr(), ctx.user, note if isinstance(note, str) and note else None)
    return 204, None


@route("GET", MR + "/draft_notes/:seg")
def get_draft(ctx: Ctx) -> Result:
    mr = ctx.mr()
    return 200, ser.draft_note(ctx.store.draft(mr, ctx.user, as_int(ctx.args[2], "draft_note_id")), mr)


@route("PUT", MR + "/draft_notes/:seg")
def update_draft(ctx: Ctx) -> Result:
    mr = ctx.mr()
    draft_id = as_int(ctx.args[2], "draft_note_id")
    draft = ctx.store.update_draft(mr, ctx.user, draft_id, ctx.param("note"), ctx.param("position"))
    return 200, ser.draft_note(draft, mr)


@route("DELETE", MR + "/draft_notes/:seg")
def delete_draft(ctx: Ctx) -> Result:
    ctx.store.delete_draft(ctx.mr(), ctx.user, as_int(ctx.args[2], "draft_note_id"))
    return 204, None


@route("PUT", MR + "/draft_notes/:seg/publish")
def publish_draft(ctx: Ctx) -> Result:
    ctx.store.publish_draft(ctx.mr(), ctx.user, as_int(ctx.args[2], "draft_note_id"))
    return 204, None


# --- commit statuses --------------------------------------------------------------------------


@route("POST", "/projects/:seg/statuses/:seg")
def set_commit_status(ctx: Ctx) -> Result:
    name = ctx.param("name") or ctx.param("context")
    status, found = ctx.store.set_commit_status(
        ctx.project(), ctx.user, unquote(ctx.args[1]), ctx.required("state"),
        name=name, ref=ctx.param("ref"), description=ctx.param("description"),
        target_url=ctx.param("target_url"),
    )  # fmt: skip
    return status, ser.commit_status(found)


@route("GET", "/projects/:seg/repository/commits/:seg/statuses")
def list_commit_statuses(ctx: Ctx) -> Result:
    all_ = as_bool(ctx.param("all", False))
    statuses = ctx.store.commit_statuses(
        ctx.project(), unquote(ctx.args[1]), ref=ctx.param("ref"), name=ctx.param("name"), all_=bool(all_)
    )
    return ctx.page([ser.commit_status(s) for s in statuses])


# --- award emoji ------------------------------------------------------------------------------


def _award_routes(prefix: str, *, on_note: bool) -> None:
    def target(ctx: Ctx) -> MergeRequest | Note:
        mr = ctx.mr()
        return ctx.store.note(mr, as_int(ctx.args[2], "note_id")) if on_note else mr

    @route("GET", prefix + "/award_emoji")
    def list_awards(ctx: Ctx) -> Result:
        awardable = target(ctx)
        with ctx.store.lock:
            return ctx.page([ser.award(a) for a in awardable.awards])

    @route("POST", prefix + "/award_emoji")
    def create_award(ctx: Ctx) -> Result:
        name = ctx.required("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_+-]{1,64}", name):
            raise ApiError(404, "404 Award Emoji Name is not a valid emoji name Not Found")
        return 201, ser.award(ctx.store.award(target(ctx), ctx.user, name))

    @route("DELETE", prefix + "/award_emoji/:seg")
    def delete_award(ctx: Ctx) -> Result:
        ctx.store.remove_award(target(ctx), as_int(ctx.args[-1], "award_id"), ctx.user)
        return 204, None


_award_routes(MR, on_note=False)
_award_routes(MR + "/notes/:seg", on_note=True)
