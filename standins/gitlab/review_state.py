"""Draft notes (a review published in one batch) and commit statuses, as GitLab keeps them.

Draft notes (`DraftNotes::CreateService`, `DraftNotes::PublishService`): a user's pending comments
on an MR, visible to that user only; publishing one turns it into a note (one notification), bulk
publishing turns all of the user's drafts on the MR into notes with one notification for the
whole review. A reply draft (`in_reply_to_discussion_id`) joins that thread and, when published,
resolves it (`resolve_discussion`) or else reopens it, as GitLab's PublishService does.

Commit statuses (`API::CommitStatuses`, `CommitStatus`'s state machine): `POST .../statuses/:sha`
finds the running or pending status of that name and ref, or starts a new one in `created`, then
fires the event the requested state names; an event the current state does not allow is GitLab's
400 `Cannot transition status via :run from :running (...)`. A finished status is never changed:
posting again starts a new one, and the old one drops out of the default listing (retried).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from standins.gitlab.errors import ApiError, forbidden, not_found
from standins.gitlab.models import CommitStatus, DraftNote, MergeRequest, Project, User, now_iso
from standins.gitlab.positions import PositionError, validate_position

STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
_BEFORE_RUN = ("created", "waiting_for_resource", "preparing")
# event -> the states it may leave (app/models/commit_status.rb) and the state it reaches
EVENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "enqueue": ((*_BEFORE_RUN, "skipped", "manual", "scheduled"), "pending"),
    "run": (("pending",), "running"),
    "skip": ((*_BEFORE_RUN, "pending"), "skipped"),
    "drop": ((*_BEFORE_RUN, "pending", "running", "manual", "scheduled"), "failed"),
    "success": ((*_BEFORE_RUN, "pending", "running"), "success"),
    "cancel": ((*_BEFORE_RUN, "pending", "running", "manual", "scheduled"), "canceled"),
}
# the requested state -> events fired; a leading "?" is fired without its error (Ruby's non-bang)
STATE_EVENTS = {
    "pending": ("enqueue",),
    "running": ("?enqueue", "run"),
    "success": ("success",),
    "failed": ("drop",),
    "canceled": ("cancel",),
    "skipped": ("skip",),
}
FINISHED = ("success", "failed", "canceled", "skipped")
DEVELOPER = 30


class ReviewState:
    """Mixed into Store: uses its lock, ids, discussions and notifications."""

    lock: Any
    notifications: list[Any]

    # --- draft notes ----------------------------------------------------------------------------
    def create_draft(
        self,
        mr: MergeRequest,
        author: User,
        note: str,
        *,
        position: dict[str, Any] | None,
        in_reply_to: str | None,
        resolve_discussion: bool,
        commit_id: str | None,
    ) -> DraftNote:
        with self.lock:
            body = self._draft_text(note)
            if in_reply_to:
                if not any(d.id == in_reply_to for d in mr.discussions):
                    raise ApiError(400, {"base": ["Thread to reply to cannot be found"]})
                position = None  # a reply takes its thread's place
            elif position is not None:
                try:
                    validate_position(position, self.version_refs(mr))  # type: ignore[attr-defined]
                except PositionError as exc:
                    raise ApiError(400, exc.message) from exc
            if resolve_discussion and in_reply_to:
                thread = next(d for d in mr.discussions if d.id == in_reply_to)
                if not any(n.resolvable for n in thread.notes):
                    raise ApiError(400, {"base": ["User is not allowed to resolve thread"]})
            draft = DraftNote(
                self._next("draft_note"), author, body, position, in_reply_to or None,  # type: ignore[attr-defined]
                bool(resolve_discussion), commit_id,
            )  # fmt: skip
            mr.drafts.append(draft)
            return draft

    def drafts_of(self, mr: MergeRequest, user: User) -> list[DraftNote]:
        with self.lock:
            return [d for d in mr.drafts if d.author is user]

    def draft(self, mr: MergeRequest, user: User, draft_id: int) -> DraftNote:
        with self.lock:
            found = next((d for d in mr.drafts if d.id == draft_id and d.author is user), None)
        if found is None:
            raise not_found("Draft Note")  # another user's draft does not exist for you
        return found

    def update_draft(
        self, mr: MergeRequest, user: User, draft_id: int, note: str | None, position: dict[str, Any] | None
    ) -> DraftNote:
        with self.lock:
            draft = self.draft(mr, user, draft_id)
            if position is not None and draft.discussion_id is None:
                try:
                    validate_position(position, self.version_refs(mr))  # type: ignore[attr-defined]
                except PositionError as exc:
                    raise ApiError(400, exc.message) from exc
                draft.position = position
            if note is not None:
                draft.note = self._draft_text(note)
            return draft

    def delete_draft(self, mr: MergeRequest, user: User, draft_id: int) -> None:
        with self.lock:
            mr.drafts.remove(self.draft(mr, user, draft_id))

    def publish_draft(self, mr: MergeRequest, user: User, draft_id: int) -> None:
        with self.lock:
            draft = self.draft(mr, user, draft_id)
            self._publish(mr, user, draft)
            mr.drafts.remove(draft)
            self._notify("note", mr, user, 1)  # type: ignore[attr-defined]

    def bulk_publish(self, mr: MergeRequest, user: User, note: str | None = None) -> int:
        """Publish all of `user`'s drafts on `mr`, and `note` as the review's general comment (a
        plain note, as GitLab 17.x+ accepts it): one notification for the whole review."""
        with self.lock:
            drafts = [d for d in mr.drafts if d.author is user]
            for draft in drafts:
                self._publish(mr, user, draft)
            mr.drafts = [d for d in mr.drafts if d.author is not user]
            store: Any = self
            if note:
                store.create_discussion(mr, user, self._draft_text(note), None, individual=True, notify=False)
            count = len(drafts) + bool(note)
            if count:
                store._notify("review", mr, user, count)
            return count

    def _publish(self, mr: MergeRequest, user: User, draft: DraftNote) -> None:
        store: Any = self
        if draft.discussion_id is not None:
            store.reply(mr, draft.discussion_id, user, draft.note, notify=False)
            # DraftNotes::PublishService#set_discussion_resolve_status: a reply draft resolves its
            # thread when it says so (and the user may), and otherwise REOPENS it: a reply published
            # without `resolve_discussion` to a resolved thread unresolves it.
            thread = store.discussion(mr, draft.discussion_id)
            if any(n.resolvable for n in thread.notes):
                store.resolve(mr, draft.discussion_id, user, bool(draft.resolve_discussion))
            return
        # A draft that starts a thread becomes a resolvable thread (DiffNote on a position,
        # DiscussionNote otherwise), as a comment started with "Add to review" does.
        store.create_discussion(mr, user, draft.note, draft.position, individual=False, notify=False)

    @staticmethod
    def _draft_text(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ApiError(400, "note is missing", key="error")
        if len(value) > 1_000_000:
            raise ApiError(400, {"note": ["is too long (maximum is 1000000 characters)"]})
        return value

    # --- commit statuses ------------------------------------------------------------------------
    def set_commit_status(
        self,
        project: Project,
        user: User,
        sha: str,
        state: Any,
        *,
        name: str | None,
        ref: str | None,
        description: str | None,
        target_url: str | None,
    ) -> tuple[int, CommitStatus]:
        if state not in STATES:
            raise ApiError(400, "state does not have a valid value", key="error")
        with self.lock:
            if project.members.get(user.id, 0) < DEVELOPER:
                raise forbidden()
            full = project.repo.ref_sha(sha) if sha and not sha.startswith("-") else None
            if full is None or not full.startswith(sha):
                raise not_found("Commit")
            ref = ref or next(iter(project.repo.branches_containing(full)), None)
            if ref is None:
                raise not_found("References for commit")
            if target_url is not None and urlsplit(str(target_url)).scheme not in ("http", "https"):
                raise ApiError(400, {"target_url": ["is blocked: Only allowed schemes are http, https"]})
            name = name or "default"
            status = next(
                (
                    s
                    for s in reversed(project.statuses)
                    if (s.sha, s.name, s.ref) == (full, name, ref) and s.status in ("pending", "running")
                ),
                None,
            )
            created = status is None
            if status is None:
                status = CommitStatus(self._next("commit_status"), full, ref, name, "created", user)  # type: ignore[attr-defined]
            if description is not None:
                status.description = str(description)
            if target_url is not None:
                status.target_url = str(target_url)
            for event in STATE_EVENTS[state]:
                quiet = event.startswith("?")
                event = event.lstrip("?")
                sources, target = EVENTS[event]
                if status.status in sources:
                    self._transition(status, target)
                elif not quiet:
                    raise ApiError(
                        400,
                        f"Cannot transition status via :{event} from :{status.status} "
                        f'(Reason(s): Status cannot transition via "{event}")',
                    )
            if created:
                project.statuses.append(status)
            return 201, status

    @staticmethod
    def _transition(status: CommitStatus, target: str) -> None:
        status.status = target
        if target == "running":
            status.started_at = now_iso()
        if target in FINISHED:
            status.finished_at = now_iso()

    def commit_statuses(
        self, project: Project, sha: str, *, ref: str | None, name: str | None, all_: bool
    ) -> list[CommitStatus]:
        with self.lock:
            full = project.repo.ref_sha(sha) if sha and not sha.startswith("-") else None
            if full is None:
                raise not_found("Commit")
            found = [s for s in project.statuses if s.sha == full]
            if not all_:
                # Only the latest of each name and ref; older ones count as retried.
                latest: dict[tuple[str, str | None], CommitStatus] = {}
                for status in found:
                    latest[(status.name, status.ref)] = status
                found = sorted(latest.values(), key=lambda s: s.id)
            if ref:
                found = [s for s in found if s.ref == ref]
            if name:
                found = [s for s in found if s.name == name]
            return found
