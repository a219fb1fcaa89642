"""All stand-in state and the GitLab rules that change it, under one lock."""

from __future__ import annotations

import re
import secrets
import threading
from pathlib import Path
from typing import Any

from standins.gitlab import hookpayloads
from standins.gitlab.errors import ApiError, forbidden, not_found
from standins.gitlab.gitrepo import BareRepo, GitError
from standins.gitlab.models import (
    AccessEntry,
    AwardEmoji,
    Discussion,
    Group,
    MergeRequest,
    Note,
    Notification,
    Project,
    ProtectedBranch,
    PushRecord,
    User,
    Version,
    is_draft_title,
    now_iso,
)
from standins.gitlab.positions import FileDiff, PositionError, VersionRefs, validate_position
from standins.gitlab.quick_actions import QuickActionRecord, extract
from standins.gitlab.review_state import ReviewState
from standins.gitlab.webhooks import WebhookSender

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
MAX_BODY_CHARS = 1_000_000  # GitLab's note length limit


def check_project_path(path: str) -> None:
    segments = path.split("/")
    if len(segments) < 2 or not all(_SEGMENT.match(s) and not s.endswith((".git", ".")) for s in segments):
        raise ValueError(f"invalid project path {path!r}: want 'group/name' of [A-Za-z0-9_.-] segments")


class Store(ReviewState):
    def __init__(self, root: Path) -> None:
        self.lock = threading.RLock()
        self.repos_root = root / "repos"
        self.base_url = "http://127.0.0.1"
        self.users: dict[int, User] = {}
        self.projects: dict[int, Project] = {}
        self.mrs: dict[tuple[int, int], MergeRequest] = {}
        self.push_log: list[PushRecord] = []
        self.quick_actions: list[QuickActionRecord] = []
        self.notifications: list[Notification] = []
        self.groups: dict[int, Group] = {}
        self.hooks = WebhookSender()
        self._ids: dict[str, int] = {}
        self._diff_cache: dict[tuple[int, str, str], list[FileDiff]] = {}

    def _record_quick_actions(self, where: str, mr: MergeRequest, user: User, text: str) -> None:
        # GitLab runs these as `user` when the text is written through the API; the stand-in records
        # them instead, so tests can assert that nothing the service writes would run one.
        for action in extract(text):
            self.quick_actions.append(
                QuickActionRecord(
                    where,
                    mr.project.path_with_namespace,
                    mr.iid,
                    user.username,
                    action.command,
                    action.argument,
                )
            )

    def _next(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    # --- users and projects -------------------------------------------------------------------

    def add_user(self, username: str, name: str | None, token: str | None) -> User:
        if not _USERNAME.match(username):
            raise ValueError(f"invalid username {username!r}")
        with self.lock:
            if any(u.username == username for u in self.users.values()):
                raise ValueError(f"user {username!r} exists")
            token = token or f"glpat-{secrets.token_urlsafe(15)}"
            if any(u.token == token for u in self.users.values()):
                raise ValueError("token already belongs to another user")
            user = User(self._next("user"), username, name or username, token)
            self.users[user.id] = user
            return user

    def user_by_token(self, token: str | None) -> User | None:
        if not token:
            return None
        with self.lock:
            found = None
            for user in self.users.values():
                # Compare every token so timing does not reveal which prefix matched.
                if secrets.compare_digest(user.token.encode(), token.encode()):
                    found = user
            return found

    def user_named(self, username: str) -> User:
        with self.lock:
            for user in self.users.values():
                if user.username == username:
                    return user
        raise KeyError(f"no user {username!r}")

    def create_project(
        self, path: str, files: dict[str, str | bytes], default_branch: str, members: dict[str, int]
    ) -> Project:
        check_project_path(path)
        with self.lock:
            if any(p.path_with_namespace == path for p in self.projects.values()):
                raise ValueError(f"project {path!r} exists")
            resolved = {self.user_named(name).id: level for name, level in members.items()}
            repo = BareRepo.init(self.repos_root / f"{path}.git", default_branch)
            repo.commit_files(default_branch, dict(files), "Initial commit", parent=None)
            project = Project(self._next("project"), path, default_branch, repo, resolved)
            # As in GitLab: a new project's default branch is protected, Maintainers push and merge.
            self._protect(project, default_branch, [AccessEntry(40)], [AccessEntry(40)])
            self.projects[project.id] = project
            return project

    # --- protected branches and groups --------------------------------------------------------

    def _protect(
        self, project: Project, name: str, push: list[AccessEntry], merge: list[AccessEntry]
    ) -> ProtectedBranch:
        rule = ProtectedBranch(self._next("protected_branch"), name, push, merge)
        project.protected = [p for p in project.protected if p.name != name] + [rule]
        return rule

    def protect(
        self, project: Project, name: str, push: list[AccessEntry], merge: list[AccessEntry] | None = None
    ) -> ProtectedBranch:
        with self.lock:
            return self._protect(project, name, push, merge if merge is not None else [AccessEntry(40)])

    def unprotect(self, project: Project, name: str) -> None:
        with self.lock:
            project.protected = [p for p in project.protected if p.name != name]

    def protection_of(self, project: Project, branch: str) -> list[ProtectedBranch]:
        """The rules that match `branch` (GitLab: `*` matches any characters, `/` included)."""
        with self.lock:
            return [p for p in project.protected if _wildcard(p.name).fullmatch(branch)]

    def may_push(self, project: Project, branch: str, user: User) -> bool:
        """GitLab's rule: any matching protection rule that lets the user push (the most permissive
        wins); an unprotected branch takes Developer."""
        with self.lock:
            level = project.members.get(user.id, 0)
            rules = self.protection_of(project, branch)
            if not rules:
                return level >= 30
            for rule in rules:
                for entry in rule.push:
                    if entry.access_level and entry.access_level <= 40 and level >= entry.access_level:
                        return True
                    if entry.user_id == user.id and level >= 30:
                        return True
                    group = self.groups.get(entry.group_id) if entry.group_id else None
                    if group is not None and user.id in group.members:
                        return True
            return False

    def add_group(self, path: str, members: dict[str, int]) -> Group:
        with self.lock:
            group = Group(
                self._next("group"), path, {self.user_named(n).id: lvl for n, lvl in members.items()}
            )
            self.groups[group.id] = group
            return group

    def project(self, ref: str | int | Project) -> Project:
        if isinstance(ref, Project):
            return ref
        with self.lock:
            if isinstance(ref, int) or str(ref).isdigit():
                found = self.projects.get(int(ref))
            else:
                found = next((p for p in self.projects.values() if p.path_with_namespace == ref), None)
        if found is None:
            raise not_found("Project")
        return found

    def project_by_repo_path(self, path: str) -> Project | None:
        with self.lock:
            return next((p for p in self.projects.values() if p.path_with_namespace == path), None)

    # --- branches and pushes ------------------------------------------------------------------

    def commit(
        self,
        project: Project,
        branch: str,
        files: dict[str, str | bytes | None],
        message: str,
        *,
        from_branch: str | None,
        renames: dict[str, str] | None,
        actor: User | None,
    ) -> str:
        with self.lock:
            repo = project.repo
            try:
                repo.git("check-ref-format", "--branch", branch)
            except GitError:
                raise ValueError(f"invalid branch name {branch!r}") from None
            old = repo.branch_sha(branch)
            parent = old or repo.branch_sha(from_branch or project.default_branch)
            if parent is None:
                raise ValueError(f"branch {from_branch or project.default_branch!r} does not exist")
            new = repo.commit_files(branch, files, message, parent=parent, expected_old=old, renames=renames)
            self.branches_moved(project, {branch: (old, new)}, actor)
            return new

    def branches_moved(
        self, project: Project, moves: dict[str, tuple[str | None, str | None]], actor: User | None
    ) -> None:
        """Record pushes and refresh every open MR whose source branch moved (new version + hook)."""
        with self.lock:
            for branch, (old, new) in moves.items():
                if old == new:
                    continue
                forced = bool(old and new and not project.repo.is_ancestor(old, new))
                self.push_log.append(
                    PushRecord(project.path_with_namespace, branch, old or "", new or "", forced)
                )
            for mr in self.mrs.values():
                if mr.project is project and mr.state == "opened" and mr.source_branch in moves:
                    self._refresh_mr(mr, actor)

    def _refresh_mr(self, mr: MergeRequest, actor: User | None) -> None:
        head = mr.project.repo.branch_sha(mr.source_branch)
        if head is None or head == mr.latest.head_sha:
            return
        oldrev = mr.latest.head_sha
        mr.versions.append(self._build_version(mr))
        mr.updated_at = now_iso()
        self._set_mr_ref(mr)
        payload = hookpayloads.merge_request_hook(
            mr, actor or mr.author, "update", self.base_url, oldrev=oldrev
        )
        self.hooks.send("Merge Request Hook", payload)

    def _set_mr_ref(self, mr: MergeRequest) -> None:
        # GitLab keeps refs/merge-requests/<iid>/head so clients can fetch an MR head by ref.
        mr.project.repo.git("update-ref", f"refs/merge-requests/{mr.iid}/head", mr.latest.head_sha)

    def _build_version(self, mr: MergeRequest) -> Version:
        repo = mr.project.repo
        head = repo.branch_sha(mr.source_branch)
        start = repo.branch_sha(mr.target_branch)
        if head is None:
            raise ApiError(422, [f'Source branch "{mr.source_branch}" does not exist'])
        if start is None:
            raise ApiError(422, [f'Target branch "{mr.target_branch}" does not exist'])
        base = repo.merge_base(start, head) or start
        return Version(
            self._next("version"), base, start, head, now_iso(), self.file_diffs(mr.project, base, head)
        )

    def file_diffs(self, project: Project, base: str, head: str) -> list[FileDiff]:
        key = (project.id, base, head)
        cached = self._diff_cache.get(key)
        if cached is not None:
            return cached
        files = []
        for change in project.repo.raw_changes(base, head):
            files.append(
                FileDiff(
                    old_path=change.old_path,
                    new_path=change.new_path,
                    a_mode=change.a_mode,
                    b_mode=change.b_mode,
                    diff=project.repo.patch_text(base, head, change),
                    new_file=change.status == "A",
                    deleted_file=change.status == "D",
                    renamed_file=change.status == "R",
                )
            )
        self._diff_cache[key] = files
        return files

    # --- merge requests -----------------------------------------------------------------------

    def create_mr(
        self,
        project: Project,
        source: str,
        target: str,
        title: str,
        description: str,
        author: User,
        draft: bool,
    ) -> MergeRequest:
        if draft and not is_draft_title(title):
            title = f"Draft: {title}"
        with self.lock:
            if source == target:
                raise ApiError(422, ["You can't use same project/branch for source and target"])
            for other in self.mrs.values():
                if (
                    other.project is project
                    and other.state == "opened"
                    and (other.source_branch, other.target_branch) == (source, target)
                ):
                    raise ApiError(
                        409,
                        [f"Another open merge request already exists for this source branch: !{other.iid}"],
                    )
            stamp = now_iso()
            iid = self._ids.get(f"iid-{project.id}", 0) + 1
            mr = MergeRequest(
                id=0, iid=iid, project=project, title=title, description=description, source_branch=source,
                target_branch=target, author=author, state="opened", created_at=stamp, updated_at=stamp,
            )  # fmt: skip
            mr.versions.append(self._build_version(mr))
            self._ids[f"iid-{project.id}"] = iid
            mr.id = self._next("mr")
            self.mrs[(project.id, iid)] = mr
            self._set_mr_ref(mr)
            self._record_quick_actions("mr_description", mr, author, description)
            self.hooks.send(
                "Merge Request Hook", hookpayloads.merge_request_hook(mr, author, "open", self.base_url)
            )
            return mr

    def mr(self, project: Project, iid: int) -> MergeRequest:
        with self.lock:
            found = self.mrs.get((project.id, iid))
        if found is None:
            raise not_found("Merge Request")
        return found

    def update_mr(self, mr: MergeRequest, actor: User, changes: dict[str, Any]) -> MergeRequest:
        with self.lock:
            if "title" in changes:
                mr.title = _text(changes["title"], "title", 255)
            if "description" in changes:
                mr.description = _text(changes["description"], "description", MAX_BODY_CHARS)
                self._record_quick_actions("mr_description", mr, actor, mr.description)
            event = changes.get("state_event")
            if event == "close" and mr.state == "opened":
                mr.state = "closed"
            elif event == "reopen" and mr.state == "closed":
                mr.state = "opened"
            mr.updated_at = now_iso()
            action = {"close": "close", "reopen": "reopen"}.get(str(event), "update")
            self.hooks.send(
                "Merge Request Hook", hookpayloads.merge_request_hook(mr, actor, action, self.base_url)
            )
            return mr

    def mark_merged(self, mr: MergeRequest) -> MergeRequest:
        """Record that the MR was merged (state and time, as a merge by a human leaves them); the
        repository is not changed: what tests need is the merged MR as the API shows it."""
        with self.lock:
            if mr.state != "opened":
                raise ApiError(405, "Method Not Allowed")
            mr.state, mr.merged_at = "merged", now_iso()
            mr.updated_at = mr.merged_at
            return mr

    def version_refs(self, mr: MergeRequest) -> list[VersionRefs]:
        return [VersionRefs(v.base_sha, v.start_sha, v.head_sha, v.files) for v in reversed(mr.versions)]

    # --- notes and discussions ----------------------------------------------------------------

    def _new_note(
        self, mr: MergeRequest, author: User, body: str, kind: str | None, discussion_id: str, position=None
    ) -> Note:
        stamp = now_iso()
        return Note(
            id=self._next("note"), type=kind, body=_text(body, "body", MAX_BODY_CHARS), author=author,
            created_at=stamp, updated_at=stamp, discussion_id=discussion_id, resolvable=kind is not None,
            position=position,
        )  # fmt: skip

    def _notify(self, kind: str, mr: MergeRequest, author: User, notes: int) -> None:
        self.notifications.append(
            Notification(kind, mr.project.path_with_namespace, mr.iid, author.username, notes)
        )

    def create_discussion(
        self,
        mr: MergeRequest,
        author: User,
        body: str,
        position: dict[str, Any] | None,
        *,
        individual: bool,
        notify: bool = True,
    ) -> Discussion:
        with self.lock:
            if position is not None:
                try:
                    validate_position(position, self.version_refs(mr))
                except PositionError as exc:
                    raise ApiError(400, exc.message) from exc
                kind: str | None = "DiffNote"
            else:
                kind = None if individual else "DiscussionNote"
            discussion = Discussion(secrets.token_hex(20), individual_note=individual)
            note = self._new_note(mr, author, body, kind, discussion.id, position)
            discussion.notes.append(note)
            mr.discussions.append(discussion)
            self._record_quick_actions("note" if individual else "discussion", mr, author, note.body)
            mr.updated_at = note.created_at
            self.hooks.send("Note Hook", hookpayloads.note_hook(mr, note, self.base_url))
            if notify:
                self._notify("note", mr, author, 1)
            return discussion

    def discussion(self, mr: MergeRequest, discussion_id: str) -> Discussion:
        with self.lock:
            found = next((d for d in mr.discussions if d.id == discussion_id), None)
        if found is None:
            raise not_found("Discussion")
        return found

    def reply(
        self, mr: MergeRequest, discussion_id: str, author: User, body: str, *, notify: bool = True
    ) -> Note:
        with self.lock:
            discussion = self.discussion(mr, discussion_id)
            first = discussion.notes[0]
            kind = "DiffNote" if first.type == "DiffNote" else "DiscussionNote"
            if discussion.individual_note:
                # Replying to a plain comment turns it into a thread, as in GitLab.
                discussion.individual_note = False
                first.type, first.resolvable = "DiscussionNote", True
            note = self._new_note(mr, author, body, kind, discussion.id, first.position)
            note.resolved = first.resolved
            discussion.notes.append(note)
            self._record_quick_actions("reply", mr, author, note.body)
            mr.updated_at = note.created_at
            self.hooks.send("Note Hook", hookpayloads.note_hook(mr, note, self.base_url))
            if notify:
                self._notify("note", mr, author, 1)
            return note

    def resolve(self, mr: MergeRequest, discussion_id: str, actor: User, resolved: bool) -> Discussion:
        with self.lock:
            discussion = self.discussion(mr, discussion_id)
            if not any(n.resolvable for n in discussion.notes):
                raise forbidden()
            stamp = now_iso()
            for note in discussion.notes:
                if note.resolvable:
                    note.resolved = resolved
                    note.resolved_by = actor if resolved else None
                    note.resolved_at = stamp if resolved else None
            return discussion

    def all_notes(self, mr: MergeRequest) -> list[Note]:
        with self.lock:
            return [n for d in mr.discussions for n in d.notes]

    def note(self, mr: MergeRequest, note_id: int, discussion_id: str | None = None) -> Note:
        with self.lock:
            for d in mr.discussions:
                if discussion_id is not None and d.id != discussion_id:
                    continue
                for n in d.notes:
                    if n.id == note_id:
                        return n
        raise not_found("Note")

    def edit_note(self, mr: MergeRequest, note: Note, actor: User, body: str) -> Note:
        with self.lock:
            if note.author is not actor:
                raise forbidden()
            note.body = _text(body, "body", MAX_BODY_CHARS)
            note.updated_at = now_iso()
            self._record_quick_actions("note_edit", mr, actor, note.body)
            return note

    def delete_note(self, mr: MergeRequest, note: Note, actor: User) -> None:
        with self.lock:
            if note.author is not actor:
                raise forbidden()
            for d in list(mr.discussions):
                if note in d.notes:
                    d.notes.remove(note)
                    if not d.notes:
                        mr.discussions.remove(d)

    # --- award emoji --------------------------------------------------------------------------

    def award(self, target: MergeRequest | Note, actor: User, name: str) -> AwardEmoji:
        with self.lock:
            if any(a.name == name and a.user is actor for a in target.awards):
                raise ApiError(404, "404 Award Emoji Name has already been taken Not Found")
            kind = "MergeRequest" if isinstance(target, MergeRequest) else "Note"
            award = AwardEmoji(self._next("award"), name, actor, kind, target.id)
            target.awards.append(award)
            return award

    def remove_award(self, target: MergeRequest | Note, award_id: int, actor: User) -> None:
        with self.lock:
            award = next((a for a in target.awards if a.id == award_id), None)
            if award is None:
                raise not_found("Award Emoji")
            if award.user is not actor:
                raise ApiError(401, "401 Unauthorized")
            target.awards.remove(award)


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"{name} is invalid", key="error")
    if len(value) > limit:
        raise ApiError(400, f"{name} is too long (maximum is {limit} characters)", key="error")
    return value


def _wildcard(name: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in name.split("*")))
