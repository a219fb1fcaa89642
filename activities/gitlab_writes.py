"""The one door every GitLab write goes through (the Jira one is `jira_writes.py`).

Each write takes the text and its marker separately: `compose` joins them, so whatever every
posted text must pass (the output filter) is applied in one place, and the marker is how a retry
finds the write again. Each method is a `write_once(send, find)` pair (see `write_door.py`): a
write whose reply was lost is looked for and adopted, never sent twice. `gitlab_api.gitlab_client`
refuses a POST/PUT/DELETE sent from anywhere else, and tests/unit/test_write_door.py fails on
a call site outside the doors.

Adding a write: a method here with its `send` and a `find` that recognises its effect (a marker
in a body, or the state it sets), plus a row in tests/reliability/test_lost_replies.py.
"""

from __future__ import annotations

from typing import Any

import gitlab

from activities.write_door import write_once
from core import markers
from core.outbound_text import gitlab_body


def compose(text: str, marker: str) -> str:
    """The body GitLab stores: the text through the output filter (no quick action can start a
    line, no marker inside it; core/outbound_text.py), then the hidden marker on its own line."""
    return gitlab_body(text, marker)


def _author_id(note: dict[str, Any]) -> Any:
    return (note.get("author") or {}).get("id")


class GitLabWrites:
    def __init__(self, gl: gitlab.Gitlab, agent_id: int) -> None:
        self.gl = gl
        self.agent_id = agent_id

    def _own(self, note: dict[str, Any], marker: str) -> bool:
        return _author_id(note) == self.agent_id and marker in str(note.get("body") or "")

    def posted_in_any_thread(self, mr: Any, kind: str, **values: object) -> bool:
        """Whether any note of ours on the MR carries a `kind` marker with these values (a notice
        that must appear once per MR, whichever thread it went to)."""
        for discussion in mr.discussions.list(iterator=True):
            for note in discussion.attributes.get("notes") or []:
                if _author_id(note) == self.agent_id and markers.has(note.get("body") or "", kind, **values):
                    return True
        return False

    # --- threads and notes -----------------------------------------------------------------------
    def discussion(self, mr: Any, text: str, marker: str, position: dict[str, Any] | None = None) -> str:
        """Start a thread (inline when `position` is given); its discussion ID."""
        data: dict[str, Any] = {"body": compose(text, marker)}
        if position is not None:
            data["position"] = position

        def find() -> str | None:
            for discussion in mr.discussions.list(iterator=True):
                notes = discussion.attributes.get("notes") or []
                if notes and self._own(notes[0], marker):
                    return str(discussion.id)
            return None

        return write_once("create discussion", lambda: str(mr.discussions.create(data).id), find)

    def reply(self, mr: Any, discussion_id: str, text: str, marker: str) -> int:
        """A note in an existing thread; its note ID."""
        body = compose(text, marker)
        thread = mr.discussions.get(discussion_id, lazy=True)

        def find() -> int | None:
            notes = mr.discussions.get(discussion_id).attributes.get("notes") or []
            return next((int(n["id"]) for n in notes if self._own(n, marker)), None)

        return write_once("reply in discussion", lambda: int(thread.notes.create({"body": body}).id), find)

    def mr_note(self, mr: Any, text: str, marker: str) -> int:
        """A general note on the MR (the summary, the failure note); its note ID."""
        body = compose(text, marker)

        def find() -> int | None:
            notes = (n.attributes for n in mr.notes.list(iterator=True, sort="desc", order_by="created_at"))
            return next((int(n["id"]) for n in notes if self._own(n, marker)), None)

        return write_once("create MR note", lambda: int(mr.notes.create({"body": body}).id), find)

    def edit_note(self, mr: Any, note_id: int, text: str, marker: str) -> None:
        """Replace a note's body (the summary is edited, never re-posted). A PUT of the same body is
        harmless to repeat; the door still checks first after a lost reply."""
        body = compose(text, marker)

        def send() -> bool:
            mr.notes.update(note_id, {"body": body})
            return True

        def find() -> bool | None:
            return True if mr.notes.get(note_id).body == body else None

        write_once("edit note", send, find)

    def resolve(self, mr: Any, discussion_id: str) -> None:
        def send() -> bool:
            mr.discussions.update(discussion_id, {"resolved": True})
            return True

        def find() -> bool | None:
            notes = mr.discussions.get(discussion_id).attributes.get("notes") or []
            resolvable = [n for n in notes if n.get("resolvable")]
            return True if resolvable and all(n.get("resolved") for n in resolvable) else None

        write_once("resolve discussion", send, find)

    def mark_ready(self, mr: Any) -> None:
        """Take the MR out of draft (ImplementIssue's review loop, only when its setting allows).
        There is no door for approving or merging: the service never does either."""
        prefixes = ("draft:", "[draft]", "(draft)", "draft -")

        def undrafted(title: str) -> str:
            stripped = title
            while stripped.lower().startswith(prefixes):
                stripped = stripped[
                    next(len(p) for p in prefixes if stripped.lower().startswith(p)) :
                ].lstrip()
            return stripped

        def send() -> bool:
            mr.title = undrafted(str(mr.title))
            mr.save()
            return True

        def find() -> bool | None:
            current = mr.manager.get(mr.iid)
            return True if not getattr(current, "draft", False) else None

        write_once("mark MR ready", send, find, check_first=True)

    # --- draft notes: a review published in one batch ----------------------------------------------
    def own_drafts(self, mr: Any) -> list[dict[str, Any]]:
        """The agent's pending draft notes on the MR (GitLab lists only the caller's own)."""
        drafts = (d.attributes for d in mr.draft_notes.list(iterator=True))
        return [d for d in drafts if d.get("author_id") in (None, self.agent_id)]

    def _draft_with(self, mr: Any, marker: str) -> int | None:
        return next((int(d["id"]) for d in self.own_drafts(mr) if marker in str(d.get("note") or "")), None)

    def draft(
        self,
        mr: Any,
        text: str,
        marker: str,
        *,
        position: dict[str, Any] | None = None,
        reply_to: str | None = None,
        resolve: bool = False,
    ) -> int:
        """A draft note (inline with `position`, a reply in thread `reply_to`, which publishing then
        resolves when `resolve`); its draft ID. Nobody else sees it until it is published."""
        data: dict[str, Any] = {"note": compose(text, marker)}
        if position is not None:
            data["position"] = position
        if reply_to is not None:
            data["in_reply_to_discussion_id"] = reply_to
            data["resolve_discussion"] = resolve
        return write_once(
            "create draft note",
            lambda: int(mr.draft_notes.create(data).id),
            lambda: self._draft_with(mr, marker),
        )

    def delete_draft(self, mr: Any, draft_id: int) -> None:
        def send() -> bool:
            try:
                mr.draft_notes.delete(draft_id)
            except gitlab.GitlabDeleteError as exc:
                if exc.response_code != 404:
                    raise  # 404: gone already (an earlier send whose reply was lost)
            return True

        write_once(
            "delete draft note",
            send,
            lambda: True if all(int(d["id"]) != draft_id for d in self.own_drafts(mr)) else None,
        )

    def publish_drafts(self, mr: Any, note: str | None = None) -> None:
        """Publish all of the agent's drafts on the MR at once: one notification for the review.
        `note` (already composed) is the review's general comment, which GitLab 17.x+ posts with the
        batch (older versions ignore it; the caller checks and posts it itself).

        Found after a lost reply when no draft of ours is left: only their author (the agent) can
        publish or delete them, so drafts that are gone were published."""

        def send() -> bool:
            mr.draft_notes.bulk_publish(**({"post_data": {"note": note}} if note else {}))
            return True

        write_once("publish the review", send, lambda: None if self.own_drafts(mr) else True)

    def publish_draft(self, mr: Any, draft_id: int) -> None:
        """Publish one draft (what is left after a batch that did not publish everything)."""

        def send() -> bool:
            mr.draft_notes.get(draft_id, lazy=True).publish()
            return True

        write_once(
            "publish draft note",
            send,
            lambda: True if all(int(d["id"]) != draft_id for d in self.own_drafts(mr)) else None,
        )

    # --- commit status ----------------------------------------------------------------------------
    def _latest_status(self, project: Any, sha: str, name: str) -> dict[str, Any] | None:
        commit = project.commits.get(sha, lazy=True)
        # `all` is python-gitlab's own keyword (fetch every page); GitLab's `all` (retried ones too)
        # goes in query_parameters.
        statuses = commit.statuses.list(query_parameters={"name": name, "all": True}, iterator=True)
        ours = [s.attributes for s in statuses if s.attributes.get("name") == name]
        return max(ours, key=lambda s: int(s["id"])) if ours else None

    def previous_status(self, project: Any, sha: str, name: str) -> dict[str, Any] | None:
        """The newest finished status of `name` on `sha` (a read, for "end as the last one did")."""
        commit = project.commits.get(sha, lazy=True)
        statuses = commit.statuses.list(query_parameters={"name": name, "all": True}, iterator=True)
        finished = [
            s.attributes for s in statuses if s.attributes.get("status") in ("success", "failed", "canceled")
        ]
        return max(finished, key=lambda s: int(s["id"])) if finished else None

    def commit_status(
        self,
        project: Any,
        sha: str,
        *,
        name: str,
        state: str,
        ref: str,
        description: str,
        target_url: str = "",
        only_over: tuple[str, ...] = (),
    ) -> str:
        """Set `name`'s status on `sha` to `state`; the state it has afterwards.

        Found (also before the first send) when the latest status of that name already has this
        state and description, so a retry never starts a second status. `only_over`: change it only
        while it is in one of these states (a superseded review cancels its own running status, not
        the result a newer attempt already gave); otherwise the current state is returned as is.
        """
        data = {"state": state, "name": name, "ref": ref, "description": description}
        if target_url:
            data["target_url"] = target_url
        statuses = project.commits.get(sha, lazy=True).statuses

        def find() -> str | None:
            latest = self._latest_status(project, sha, name)
            if latest is None:
                return "" if only_over else None  # nothing of ours to change
            if latest.get("status") == state and (latest.get("description") or "") == description:
                return state
            if only_over and latest.get("status") not in only_over:
                return str(latest.get("status"))
            return None

        def send() -> str:
            try:
                return str(statuses.create(data).status)
            except gitlab.GitlabCreateError as exc:
                # 400 "Cannot transition status via :run from :running": it is in that state already
                # (an earlier attempt whose reply was lost, with another description): keep it.
                latest = self._latest_status(project, sha, name) if exc.response_code == 400 else None
                if latest is not None and latest.get("status") == state:
                    return state
                raise

        return write_once(f"set commit status {state}", send, find, check_first=True)

    # --- award emoji -------------------------------------------------------------------------------
    def _own_awards(self, awardable: Any, name: str) -> list[Any]:
        return [
            a
            for a in awardable.awardemojis.list(get_all=True)
            if a.name == name and (a.user or {}).get("id") == self.agent_id
        ]

    def award(self, awardable: Any, name: str) -> None:
        """Put the agent's `name` emoji on an MR or a note (`mr.notes.get(id, lazy=True)`), once."""

        def send() -> bool:
            awardable.awardemojis.create({"name": name})
            return True

        write_once(
            f"award {name}",
            send,
            lambda: True if self._own_awards(awardable, name) else None,
            check_first=True,
        )

    def unaward(self, awardable: Any, name: str) -> None:
        for award in self._own_awards(awardable, name):

            def send(award_id: int = award.id) -> bool:
                try:
                    awardable.awardemojis.delete(award_id)
                except gitlab.GitlabDeleteError as exc:
                    if exc.response_code != 404:
                        raise  # 404: gone already (an earlier send whose reply was lost)
                return True

            def find(award_id: int = award.id) -> bool | None:
                remaining = {a.id for a in self._own_awards(awardable, name)}
                return True if award_id not in remaining else None

            write_once(f"remove {name}", send, find)

    # --- merge requests ----------------------------------------------------------------------------
    def merge_request(
        self,
        project: Any,
        *,
        source_branch: str,
        target_branch: str,
        title: str,
        description: str,
        marker: str,
        **options: Any,
    ) -> tuple[Any, bool]:
        """Open an MR from `source_branch`, or adopt the open one there; (MR, created by this call)."""
        data = {
            "source_branch": source_branch,
            "target_branch": target_branch,
            "title": title,
            "description": compose(description, marker),
            **options,
        }

        def open_from_branch() -> list[Any]:
            return project.mergerequests.list(source_branch=source_branch, state="opened", get_all=False)

        def find() -> tuple[Any, bool] | None:
            for mr in open_from_branch():
                if marker in str(mr.description or ""):
                    return mr, False
            return None

        def send() -> tuple[Any, bool]:
            try:
                return project.mergerequests.create(data), True
            except gitlab.GitlabCreateError as exc:
                # 409: an open MR from this branch exists (a concurrent attempt): that one is ours.
                found = open_from_branch() if exc.response_code == 409 else []
                if not found:
                    raise
                return found[0], False

        return write_once("create merge request", send, find)
