"""GitLabStandIn: the server object tests start, seed, inspect and break on purpose."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standins.gitlab import hookpayloads
from standins.gitlab import serialize as ser
from standins.gitlab.faults import Fault, FaultPlan
from standins.gitlab.frontend import Handler
from standins.gitlab.models import (
    AccessEntry,
    AwardEmoji,
    Group,
    MergeRequest,
    Note,
    Notification,
    Project,
    ProtectedBranch,
    PushRecord,
    RequestRecord,
    User,
)
from standins.gitlab.quick_actions import QuickActionRecord
from standins.gitlab.store import Store


class GitLabStandIn:
    """A stateful fake GitLab (REST v4 subset + git smart HTTP) on a background thread.

    Usage:
        with GitLabStandIn(tmp_path) as gl:
            bot = gl.add_user("bot")
            gl.create_project("grp/app", {"a.py": "x = 1\\n"}, members={"bot": 30})
            gl.commit("grp/app", "feature", {"a.py": "x = 2\\n"}, "change")
            mr = gl.create_mr("grp/app", "feature", title="Change x")
            gitlab.Gitlab(gl.url, private_token=bot.token)...
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.root)
        self.faults = FaultPlan()
        self.requests: list[RequestRecord] = []
        self.push_lock = threading.Lock()  # one receive-pack at a time keeps before/after ref diffs exact
        handler = type("BoundHandler", (Handler,), {"standin": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self.store.base_url = self.url

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> GitLabStandIn:
        if self._thread is None:
            # A short poll interval keeps stop() (and so every test teardown) fast.
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="gitlab-standin", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self.store.hooks.close()

    def __enter__(self) -> GitLabStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def git_url(self, project: str | Project) -> str:
        return f"{self.url}/{self.store.project(project).path_with_namespace}.git"

    # --- setup --------------------------------------------------------------------------------

    def add_user(self, username: str, *, name: str | None = None, token: str | None = None) -> User:
        return self.store.add_user(username, name, token)

    def create_project(
        self,
        path: str,
        files: dict[str, str | bytes],
        *,
        default_branch: str = "main",
        members: dict[str, int] | None = None,
    ) -> Project:
        return self.store.create_project(path, files, default_branch, members or {})

    def commit(
        self,
        project: str | int | Project,
        branch: str,
        files: dict[str, str | bytes | None],
        message: str,
        *,
        from_branch: str | None = None,
        renames: dict[str, str] | None = None,
        author: str | None = None,
    ) -> str:
        """Commit `files` (None deletes) and `renames` (old -> new) onto `branch`, creating it from
        `from_branch` (default branch if None) when new. Open MRs on it get a version and a webhook."""
        actor = self.store.user_named(author) if author else None
        return self.store.commit(
            self.store.project(project), branch, files, message,
            from_branch=from_branch, renames=renames, actor=actor,
        )  # fmt: skip

    def create_mr(
        self,
        project: str | int | Project,
        source_branch: str,
        target_branch: str = "main",
        *,
        title: str,
        description: str = "",
        author: str | None = None,
        draft: bool = False,
        fork_project_id: int | None = None,
    ) -> MergeRequest:
        """Open an MR as `author` (default: the first user); `fork_project_id`: from that fork."""
        user = self.store.user_named(author) if author else self._first_user()
        mr = self.store.create_mr(
            self.store.project(project), source_branch, target_branch, title, description, user, draft
        )
        mr.fork_project_id = fork_project_id
        return mr

    def add_note(
        self,
        project: str | int | Project,
        iid: int,
        username: str,
        body: str,
        discussion_id: str | None = None,
    ) -> Note:
        """Post a note as `username` (a reply when discussion_id is given); sends a Note Hook."""
        mr = self.mr(project, iid)
        user = self.store.user_named(username)
        if discussion_id is not None:
            return self.store.reply(mr, discussion_id, user, body)
        return self.store.create_discussion(mr, user, body, None, individual=True).notes[0]

    def protect_branch(
        self,
        project: str | int | Project,
        name: str,
        *,
        push: list[AccessEntry] | None = None,
        merge: list[AccessEntry] | None = None,
    ) -> ProtectedBranch:
        """Protect `name` (a branch or a wildcard): who may push, as in Settings → Repository."""
        return self.store.protect(self.store.project(project), name, push or [AccessEntry(40)], merge)

    def unprotect_branch(self, project: str | int | Project, name: str) -> None:
        self.store.unprotect(self.store.project(project), name)

    def add_group(self, path: str, members: dict[str, int]) -> Group:
        return self.store.add_group(path, members)

    def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        self.store.hooks.configure(url, secret)

    def wait_webhooks(self, timeout: float = 10.0) -> bool:
        return self.store.hooks.wait_idle(timeout)

    # --- faults -------------------------------------------------------------------------------

    def inject_faults(
        self,
        rate: float,
        statuses: tuple[int, ...] = (500, 502, 429),
        retry_after: int | None = 1,
        seed: int | None = None,
        lost_share: float = 0.0,
    ) -> None:
        self.faults.inject(rate, statuses, retry_after, seed, lost_share)

    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: int | None = None,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> None:
        self.faults.script(n, Fault(status, retry_after), path_contains, method)

    def lose_reply_next(
        self,
        n: int,
        status: int | None = 502,
        retry_after: int | None = None,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> None:
        """Process the next `n` matching requests, then answer `status` (None: drop the connection)."""
        if status is not None and not 400 <= status <= 599:
            raise ValueError("a lost reply is answered with a 4xx/5xx status or None (reset)")
        self.faults.script(n, Fault(status, retry_after, lose_reply=True), path_contains, method)

    def stall_next(self, n: int, seconds: float, path_contains: str | None = None) -> None:
        self.faults.script(n, Fault(None, stall_s=seconds), path_contains)

    def clear_faults(self) -> None:
        self.faults.clear()

    # --- inspection ---------------------------------------------------------------------------

    def mr(self, project: str | int | Project, iid: int) -> MergeRequest:
        return self.store.mr(self.store.project(project), iid)

    def merge_mr(self, project: str | int | Project, iid: int) -> MergeRequest:
        """Mark the MR merged (see GitLabStore.mark_merged)."""
        return self.store.mark_merged(self.mr(project, iid))

    def mr_json(self, project: str | int | Project, iid: int) -> dict[str, Any]:
        return ser.merge_request(self.mr(project, iid), self.url)

    def discussions(self, project: str | int | Project, iid: int) -> list[dict[str, Any]]:
        mr = self.mr(project, iid)
        with self.store.lock:
            return [ser.discussion(d, mr) for d in mr.discussions]

    def notes(self, project: str | int | Project, iid: int) -> list[dict[str, Any]]:
        mr = self.mr(project, iid)
        return [ser.note(n, mr) for n in self.store.all_notes(mr)]

    def award_emoji(
        self, project: str | int | Project, iid: int, note_id: int | None = None
    ) -> list[AwardEmoji]:
        mr = self.mr(project, iid)
        target = self.store.note(mr, note_id) if note_id is not None else mr
        with self.store.lock:
            return list(target.awards)

    def drafts(self, project: str | int | Project, iid: int) -> list[dict[str, Any]]:
        """Every user's pending draft notes on the MR (what only their authors can list)."""
        mr = self.mr(project, iid)
        with self.store.lock:
            return [{**ser.draft_note(d, mr), "author": d.author.username} for d in mr.drafts]

    def notifications(self, project: str | int | Project, iid: int) -> list[Notification]:
        """What GitLab would have e-mailed about the MR: one per direct note, one per published review."""
        path = self.store.project(project).path_with_namespace
        with self.store.lock:
            return [n for n in self.store.notifications if (n.project, n.mr_iid) == (path, iid)]

    def commit_statuses(
        self, project: str | int | Project, sha: str, *, all_: bool = True
    ) -> list[dict[str, Any]]:
        """The commit's statuses, oldest first (`all_`: with the ones a later status replaced)."""
        found = self.store.commit_statuses(self.store.project(project), sha, ref=None, name=None, all_=all_)
        return [ser.commit_status(s) for s in found]

    def branch_sha(self, project: str | int | Project, branch: str) -> str | None:
        return self.store.project(project).repo.branch_sha(branch)

    def note_hook_payload(self, project: str | int | Project, iid: int, note: Note | int) -> dict[str, Any]:
        mr = self.mr(project, iid)
        found = note if isinstance(note, Note) else self.store.note(mr, note)
        return hookpayloads.note_hook(mr, found, self.url)

    def quick_actions(self, username: str | None = None) -> list[QuickActionRecord]:
        """Quick actions that writes (by `username`, or anyone) would have made GitLab run."""
        with self.store.lock:
            return [q for q in self.store.quick_actions if username is None or q.user == username]

    @property
    def push_log(self) -> list[PushRecord]:
        return list(self.store.push_log)

    @property
    def webhook_deliveries(self) -> list[Any]:
        return list(self.store.hooks.deliveries)

    def request_count(self, method: str | None = None, path_contains: str = "") -> int:
        with self.store.lock:
            return sum(
                1 for r in self.requests if (method is None or r.method == method) and path_contains in r.path
            )

    def _first_user(self) -> User:
        with self.store.lock:
            if not self.store.users:
                raise ValueError("add a user first")
            return next(iter(self.store.users.values()))
