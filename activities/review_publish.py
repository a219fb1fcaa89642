"""Publishing one review: its findings, its answers in the agent's threads, and the summary.

Two ways, one receipt (docs/adr/0022-review-delivery.md):
- **drafts** (GitLab's draft notes): every finding and every answer of the finding ledger (a reply
  in one of the agent's threads, resolving it where the ledger says so: `resolve_discussion`)
  becomes a draft of the agent's, and one bulk publish turns them into notes at once, so reviewers
  get one notification per review, not one per comment. Exactly once: drafts carry the service's
  signed markers; an attempt first reconciles the agent's drafts (keeps this review's, deletes a
  dead older review's and answers it no longer gives), creates only the missing ones, publishes
  once (a lost reply is recognised by no draft of ours being left), and then reads the MR back to
  verify what became visible. What a batch left behind is published one
  by one; what still is not on the MR is listed in the receipt as not delivered, never dropped.
- **direct**: one thread per finding, and the answers one by one, as GitLab versions without draft
  notes need (REVIEW_PUBLISH).

The drafts are created a few at a time (`DRAFT_WRITERS` threads on the client's session): each is its
own write through the door, found by its marker after a lost reply, so running them side by side
changes nothing about exactly once, and a 20-finding review waits for 5 round trips instead of 20.

The summary note is always written directly (edited in place after the first review); the first one
travels with the batch as the review's general comment where GitLab takes it, so the first review
is one notification too.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import gitlab

from activities.gitlab_writes import GitLabWrites, compose
from contracts.delivery import Undelivered, undelivered_list
from contracts.models import PostReviewInput, PostReviewResult
from contracts.settings import Settings
from core import markers
from core.outbound_text import code_span
from core.review_memory import ReviewMemory
from core.review_post import FindingPlan, PlannedFinding, render_finding, render_summary, spans_lines

log = logging.getLogger(__name__)
DRAFT_WRITERS = 4  # draft notes created side by side; GitLab handles a reviewer's burst like this
T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    """What the finding ledger adds in one of the agent's threads (activities/review_ledger.py): a
    reply (`text`, "" when none is needed) with its marker, and whether the thread is resolved."""

    thread_id: str
    text: str
    marker: str
    resolve: bool


def side_by_side(calls: list[Callable[[], T]], workers: int = DRAFT_WRITERS) -> list[T]:
    """Run `calls` on a few threads; their results in order. Each runs in a copy of the caller's
    context (the activity's: heartbeats on every response keep working). The first failure is
    raised after the calls already running have finished and the others were dropped, so no write
    is left in flight when the activity fails (its next attempt reconciles by the markers)."""
    if len(calls) <= 1:
        return [call() for call in calls]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(calls)), thread_name_prefix="gitlab-write")
    try:
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Expected:
    """One comment the review means to deliver, by its marker."""

    what: str  # for the receipt: finding `file:line`, reply in thread ...
    kind: str  # "inline", "general" or "reply"
    critical: bool = False
    fingerprint: str = ""
    thread_id: str = ""
    resolve: bool = False


@dataclass
class Publication:
    settings: Settings
    writes: GitLabWrites
    mr: Any
    data: PostReviewInput
    memory: ReviewMemory
    plan: FindingPlan
    reread: Callable[[], ReviewMemory]  # the MR's discussions, read again
    answers: list[Answer] = field(default_factory=list)  # the finding ledger's, decided before
    result: PostReviewResult = field(init=False)
    after: ReviewMemory | None = field(init=False, default=None)  # the MR read back after publishing

    def __post_init__(self) -> None:
        earlier_inline = sum(1 for thread in self.plan.earlier if thread.inline)
        # What an earlier attempt of this review published counts as delivered by this review.
        self.result = PostReviewResult(
            duplicates_dropped=self.plan.duplicates,
            already_posted=self.plan.already_posted,
            inline=earlier_inline,
            fallback=len(self.plan.earlier) - earlier_inline,
            critical=self.plan.earlier_critical,
        )

    @property
    def head(self) -> str:
        return self.data.head_sha

    # --- direct: thread by thread --------------------------------------------------------------
    def direct(self) -> PostReviewResult:
        result, writes, mr = self.result, self.writes, self.mr
        result.published = "direct"
        for item in self.plan.to_post:
            text, marker = render_finding(item, self.head)
            if item.position is not None:
                try:
                    writes.discussion(mr, text, marker, position=item.position)
                    result.inline += 1
                    result.critical += item.finding.severity == "critical"
                    continue
                except gitlab.GitlabCreateError as exc:
                    if exc.response_code != 400:
                        raise
                    item = self._rejected(item)
                    text, marker = render_finding(item, self.head)
            writes.discussion(mr, text, marker)
            result.fallback += 1
            result.critical += item.finding.severity == "critical"
        for answer in self.answers:
            if answer.text:
                writes.reply(mr, answer.thread_id, answer.text, answer.marker)
                result.replies += 1
            if answer.resolve:
                writes.resolve(mr, answer.thread_id)
                result.threads_resolved += 1
        self.after = self.reread() if self.plan.to_post or self.answers else self.memory
        return result

    def _rejected(self, item: PlannedFinding) -> PlannedFinding:
        # GitLab refused the position after all: never lose the finding.
        self.result.rejected_positions += 1
        log.warning("position rejected for %s:%s", item.finding.file, item.finding.line)
        return item.as_fallback("GitLab did not accept an inline position for this line")

    # --- drafts: one batch -----------------------------------------------------------------------
    def drafts(self) -> tuple[PostReviewResult, str | None]:
        """Publish as one review; (result, the summary text GitLab was given with the batch)."""
        result = self.result
        result.published = "drafts"
        wanted = {a.marker for a in self.answers if a.text}
        pending, foreign = self._reconcile_drafts(wanted)
        expected: dict[str, _Expected] = {}
        calls: list[Callable[[], tuple[str, _Expected, bool]]] = []
        for item in self.plan.to_post:
            _, marker = render_finding(item, self.head)
            if marker in pending:  # an earlier attempt's draft
                expected[marker] = _finding_expected(
                    item, "inline" if _inline(pending[marker]) else "general"
                )
            else:
                calls.append(partial(self._finding_draft, item))
        for answer in self.answers:
            if not answer.text:
                continue  # a resolve without a reply: after the batch (_verify)
            if answer.marker in pending:
                expected[answer.marker] = _answer_expected(answer)
            else:
                calls.append(partial(self._answer_draft, answer))
        for marker, item, rejected in side_by_side(calls):
            expected[marker] = item
            result.rejected_positions += rejected
        summary_note = None
        if expected and self.memory.summary_note_id is None:
            # The first summary goes with the batch (one notification), receipt as planned; it is
            # checked and corrected after the batch is verified.
            planned = self.result.model_copy(deep=True)
            self._count(planned, expected.values())
            summary_note = compose(*render_summary(self.data, planned, self.memory))
        published = bool(expected or pending)
        if published:
            self._publish(summary_note, foreign)
        self._verify(expected, published)
        return result, summary_note

    def _finding_draft(self, item: PlannedFinding) -> tuple[str, _Expected, bool]:
        """One finding's draft, inline where GitLab takes the position; (marker, what is expected,
        whether the position was refused). Runs beside the others: it changes no shared state."""
        text, marker = render_finding(item, self.head)
        if item.position is not None:
            try:
                self.writes.draft(self.mr, text, marker, position=item.position)
                return marker, _finding_expected(item, "inline"), False
            except gitlab.GitlabCreateError as exc:
                if exc.response_code != 400:
                    raise
            # GitLab refused the position after all: never lose the finding.
            log.warning("position rejected for %s:%s", item.finding.file, item.finding.line)
            item = item.as_fallback("GitLab did not accept an inline position for this line")
            text, marker = render_finding(item, self.head)
            self.writes.draft(self.mr, text, marker)
            return marker, _finding_expected(item, "general"), True
        self.writes.draft(self.mr, text, marker)
        return marker, _finding_expected(item, "general"), False

    def _answer_draft(self, answer: Answer) -> tuple[str, _Expected, bool]:
        """A reply draft in the agent's thread that resolves it on publishing when the ledger says so
        (`resolve_discussion`; GitLab reopens a thread a reply draft without it is published to, so
        the ledger only answers threads that are open)."""
        self.writes.draft(
            self.mr, answer.text, answer.marker, reply_to=answer.thread_id, resolve=answer.resolve
        )
        return answer.marker, _answer_expected(answer), False

    def _reconcile_drafts(self, wanted: set[str]) -> tuple[dict[str, dict[str, Any]], set[int]]:
        """(the agent's drafts of this review by marker, the IDs of drafts of the agent's account the
        service did not write). Deleted, because a bulk publish would publish them with this one: a
        dead older review's drafts, and this head's answers this attempt no longer gives (a human
        resolved the thread meanwhile: publishing the reply would reopen it)."""
        pending: dict[str, dict[str, Any]] = {}
        foreign: set[int] = set()
        for draft in self.writes.own_drafts(self.mr):
            body = str(draft.get("note") or "")
            kind, values, _ = markers.read(body)
            marker = _trailing_marker(body)
            if values is None:
                foreign.add(int(draft["id"]))  # not the service's: left alone (see _publish)
            elif values.get("sha") == self.head and (
                kind == markers.FINDING or (kind == markers.RESOLUTION and marker in wanted)
            ):
                pending[marker] = draft
            else:
                self.writes.delete_draft(self.mr, int(draft["id"]))
        return pending, foreign

    def _publish(self, summary_note: str | None, foreign: set[int]) -> None:
        # `foreign` as reconciled before the drafts were created (no second listing on the path to
        # the summary): a draft typed with the agent's account in that very second is the one case
        # a bulk publish would take along.
        if not foreign:
            self.writes.publish_drafts(self.mr, summary_note)
            return
        # Drafts of the agent's account the service did not write (someone using its token): a
        # bulk publish would publish them too, so this review's go one by one instead.
        log.warning(
            "MR !%s has %d foreign drafts of the agent; publishing one by one", self.mr.iid, len(foreign)
        )
        for draft in self.writes.own_drafts(self.mr):
            if int(draft["id"]) not in foreign and markers.read(str(draft.get("note") or ""))[1] is not None:
                self.writes.publish_draft(self.mr, int(draft["id"]))

    def _delivered(self, memory: ReviewMemory, item: _Expected) -> bool:
        if item.kind == "reply":
            thread = memory.thread(item.thread_id)
            return thread is not None and self.head in thread.resolution_replied_for
        thread = memory.fingerprints.get(item.fingerprint)
        return thread is not None and thread.reviewed_sha == self.head

    def _verify(self, expected: dict[str, _Expected], published: bool) -> None:
        """Read the MR back: count what is visible, publish what a batch left, list the rest."""
        after = self.reread() if published else self.memory  # nothing published: nothing changed
        missing = {m: e for m, e in expected.items() if not self._delivered(after, e)}
        if missing:
            left = {_trailing_marker(str(d.get("note") or "")): d for d in self.writes.own_drafts(self.mr)}
            for marker in missing:
                if marker in left:
                    self.writes.publish_draft(self.mr, int(left[marker]["id"]))
            after = self.reread()
        undelivered = []
        for item in expected.values():
            if not self._delivered(after, item):
                undelivered.append(
                    Undelivered(what=item.what, reason="not visible on the MR after publishing")
                )
                continue
            self._count(self.result, [item])
            if item.resolve:
                self._resolve(after, item.thread_id)  # by the batch; directly when it did not
        for answer in self.answers:
            if answer.resolve and not answer.text:
                # Nothing to say, only to resolve (verified earlier, or answered by an earlier
                # attempt): a resolve is no note and no notification, so it need not be a draft.
                self._resolve(after, answer.thread_id)
        self.result.not_delivered = undelivered_list(undelivered)
        self.after = after

    def _resolve(self, after: ReviewMemory, thread_id: str) -> None:
        thread = after.thread(thread_id)
        if thread is None:
            return
        if not thread.resolved:
            self.writes.resolve(self.mr, thread_id)
        self.result.threads_resolved += 1

    @staticmethod
    def _count(result: PostReviewResult, items: Any) -> None:
        for item in items:
            if item.kind == "inline":
                result.inline += 1
            elif item.kind == "general":
                result.fallback += 1
            else:
                result.replies += 1
            result.critical += item.critical


def _finding_expected(item: PlannedFinding, kind: str) -> _Expected:
    return _Expected(
        f"finding {code_span(_place(item))}", kind, item.finding.severity == "critical", item.fingerprint
    )


def _answer_expected(answer: Answer) -> _Expected:
    return _Expected(
        f"reply in thread {answer.thread_id[:8]}", "reply", thread_id=answer.thread_id, resolve=answer.resolve
    )


def _inline(draft: dict[str, Any]) -> bool:
    position = draft.get("position") or {}
    return bool(position.get("new_line") or position.get("old_line"))


def _place(item: PlannedFinding) -> str:
    finding = item.finding
    lines = f"{finding.line}-{finding.end_line}" if spans_lines(finding) else str(finding.line)
    return f"{finding.file}:{lines}"


def _trailing_marker(body: str) -> str:
    """The marker line a body ends with (compose puts it on its own last line)."""
    return body.rstrip().rsplit("\n", 1)[-1].strip()
