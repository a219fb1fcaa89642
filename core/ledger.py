"""The finding ledger's lifecycle: one step per completed review. Pure.

Each finding the agent raised is an entry with a state and its history:

    open -> addressed (the code at its anchor changed) -> verified (the agent re-checked it on the
    new head) -> resolved (the thread is resolved: by the agent after verification, or by a human)
    open -> rebutted (a reply with a reason from someone allowed to dismiss) -> closed (acknowledged)
    open -> outdated (the code is gone: file deleted, lines removed)
    addressed -> reopened (the re-check on the new head says it is not fixed) -> addressed ...

A human's "fixed" reply counts like a change at the anchor: it asks for a verification, and a
failed one reopens the entry. The agent's "resolved" verdict counts only with such a basis, so a
model that claims everything is fixed resolves nothing. A rebutted thread is acknowledged (and the
entry closed) but left for humans to resolve. The agent never resolves a thread whose
last note is a human's that nobody answered (a question, an objection): the entry stays verified
until the discussion flow answers it or a human resolves it.

`advance` takes the previous ledger (from the summary note, core/ledger_store.py) and what GitLab
says now (core/review_memory.py), and returns the new ledger plus the writes that make it true
(replies, resolutions) and the project notes learned from rebuttals; the review activity performs
the writes before it stores the ledger. A review publishing as one batch decides before it
publishes and adds its new findings' threads afterwards (`record_posted`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from contracts.ledger import (
    MAX_ANCHORS,
    MAX_ENTRIES,
    MAX_EVENTS,
    TERMINAL,
    Anchor,
    Learning,
    Ledger,
    LedgerEntry,
    LedgerEvent,
)
from contracts.models import Resolution
from core.ledger_diff import TreeDiff
from core.review_memory import OwnThread, ReviewMemory, rebuttal_reason
from core.sanitize import strip_unsafe, truncate

ActionKind = Literal["resolved", "partial", "reopened", "closed"]


@dataclass(frozen=True)
class Action:
    """A write the ledger needs in one of the agent's threads."""

    thread_id: str
    kind: ActionKind
    reply: str  # "" when the thread needs no reply (resolving a thread verified earlier)
    resolve: bool


@dataclass(frozen=True)
class NewFinding:
    """A finding this review posted (or an earlier attempt of it)."""

    thread_id: str
    fingerprint: str
    severity: str
    category: str
    title: str
    code: str
    file: str
    line: int
    end_line: int | None = None


@dataclass
class Step:
    ledger: Ledger
    actions: list[Action] = field(default_factory=list)
    learnings: list[Learning] = field(default_factory=list)
    transitions: list[tuple[LedgerEntry, LedgerEvent]] = field(default_factory=list)
    vetoed: list[str] = field(default_factory=list)  # verified threads left open for a human's reply


def _entry_from_thread(thread: OwnThread) -> LedgerEntry:
    anchors = (
        [Anchor(sha=thread.reviewed_sha or "-", file=thread.file, line=thread.line)]
        if thread.file and thread.line
        else []
    )
    return LedgerEntry(
        fingerprint=thread.fingerprint[:64],
        thread_id=thread.discussion_id,
        severity=thread.severity,
        category=thread.category,
        title=thread.title[:300],
        raised_sha=thread.reviewed_sha[:64],
        raised_at=thread.created_at[:40],
        anchors=anchors,
        history=[
            LedgerEvent(state="open", sha=thread.reviewed_sha[:64], at=thread.created_at[:40], by="agent")
        ],
    )


def _entry_from_new(new: NewFinding, head: str, now: str) -> LedgerEntry:
    return LedgerEntry(
        fingerprint=new.fingerprint,
        thread_id=new.thread_id,
        severity=new.severity,
        category=new.category,
        title=new.title[:300],
        code=new.code,
        raised_sha=head,
        raised_at=now,
        anchors=[Anchor(sha=head, file=new.file, line=new.line, end_line=new.end_line)],
        history=[LedgerEvent(state="open", sha=head, at=now, by="agent")],
    )


class _Stepper:
    def __init__(self, step: Step, head: str, now: str) -> None:
        self.step, self.head, self.now = step, head, now

    def to(self, entry: LedgerEntry, state: str, *, by: str = "agent", note: str = "", at: str = "") -> None:
        if entry.state == state:
            return
        event = LedgerEvent(
            state=state, sha=self.head, at=(at or self.now)[:40], by=by[:255], note=note[:300]
        )  # type: ignore[arg-type]
        entry.state = event.state
        entry.history.append(event)
        if len(entry.history) > MAX_EVENTS:
            entry.history = entry.history[:1] + entry.history[-(MAX_EVENTS - 1) :]
        self.step.transitions.append((entry, event))

    def act(self, thread: str, kind: ActionKind, reply: str, resolve: bool) -> None:
        self.step.actions.append(Action(thread, kind, reply, resolve))


def advance(
    prev: Ledger | None,
    memory: ReviewMemory,
    *,
    project_id: int,
    mr_iid: int,
    head: str,
    now: str,
    diff: TreeDiff | None,
    verdicts: Mapping[str, Resolution],
    posted: Sequence[NewFinding],
    auto_resolve: bool,
    tokens: int = 0,
    repeats: int = 0,
    held_back: int = 0,
) -> Step:
    ledger = prev.model_copy(deep=True) if prev is not None else Ledger(project_id=project_id, mr_iid=mr_iid)
    ledger.project_id, ledger.mr_iid = project_id, mr_iid
    step = Step(ledger=ledger)
    go = _Stepper(step, head, now)
    fresh = {new.thread_id: new for new in posted}
    _adopt(step, memory, fresh, head, now)
    new_entries = {e.thread_id for e in ledger.entries if e.raised_sha == head and e.thread_id in fresh}
    for entry in ledger.entries:
        if entry.state not in TERMINAL and entry.thread_id not in new_entries:
            _step_entry(
                go,
                entry,
                memory.thread(entry.thread_id),
                diff,
                verdicts.get(entry.thread_id),
                auto_resolve,
                project_id,
                mr_iid,
            )
    if ledger.last_sha != head:  # once per head, however often post_review is retried
        ledger.reviews += 1
        ledger.tokens += max(tokens, 0)
        ledger.repeats_prevented += max(repeats, 0)
        ledger.held_back += max(held_back, 0)
        ledger.last_sha = head
    _trim(ledger)
    return step


def record_posted(
    step: Step, memory: ReviewMemory, posted: Sequence[NewFinding], *, head: str, now: str
) -> None:
    """Add the threads a review's findings became once they are on the MR, to a step `advance`
    took before they were published (a batch of draft notes publishes the findings together with
    the answers `advance` decided: the new threads' IDs exist only afterwards). New entries are
    never stepped in the review that raised them, so adding them later changes no decision."""
    _adopt(step, memory, {new.thread_id: new for new in posted}, head, now)
    _trim(step.ledger)


def _adopt(step: Step, memory: ReviewMemory, fresh: Mapping[str, NewFinding], head: str, now: str) -> None:
    """Entries for the agent's threads the ledger does not know yet."""
    ledger = step.ledger
    known = {e.thread_id for e in ledger.entries}
    for thread in memory.own_threads:  # in GitLab's order: the ledger's entries stay in posting order
        if thread.discussion_id in known:
            continue
        known.add(thread.discussion_id)
        if (new := fresh.get(thread.discussion_id)) is not None:
            ledger.entries.append(_entry_from_new(new, head, now))
            step.transitions.append((ledger.entries[-1], ledger.entries[-1].history[0]))
        else:  # a thread the ledger has not seen (the first ledger of an MR, a lost summary)
            ledger.entries.append(_entry_from_thread(thread))


def _trim(ledger: Ledger) -> None:
    if len(ledger.entries) > MAX_ENTRIES:  # drop the oldest finished entries first
        finished = [e for e in ledger.entries if e.state in TERMINAL]
        drop = {id(e) for e in finished[: len(ledger.entries) - MAX_ENTRIES]}
        ledger.entries = [e for e in ledger.entries if id(e) not in drop][-MAX_ENTRIES:]


def _step_entry(
    go: _Stepper,
    entry: LedgerEntry,
    thread: OwnThread | None,
    diff: TreeDiff | None,
    verdict: Resolution | None,
    auto_resolve: bool,
    project_id: int,
    mr_iid: int,
) -> None:
    if thread is None:
        go.to(entry, "outdated", note="the thread was deleted")
        return
    if thread.resolved:
        by = "agent" if thread.resolved_by_agent else (thread.resolved_by or "a human")
        go.to(entry, "resolved", by=by, at=thread.resolved_at)
        return
    rebuttal = thread.rebuttal
    if rebuttal is not None:
        reason = rebuttal_reason(rebuttal.text)
        go.to(
            entry,
            "rebutted",
            by=rebuttal.username,
            note=truncate(strip_unsafe(reason or rebuttal.text), 300),
            at=rebuttal.at,
        )
        learned = ""
        if reason and rebuttal.member:
            learning = Learning(
                id=f"L-{entry.fingerprint[:10]}",
                project_id=project_id,
                title=entry.title[:300],
                file=(entry.anchor.file if entry.anchor else "")[:1000],
                text=truncate(strip_unsafe(reason), 500),
                by=rebuttal.username[:255],
                mr_iid=mr_iid,
                at=rebuttal.at[:40],
            )
            go.step.learnings.append(learning)
            entry.learned = learning.id
            learned = f" Kept as project note `{learning.id}`: later reviews of this project will see it."
        go.act(
            entry.thread_id,
            "closed",
            f"**Noted** ({rebuttal.username or 'dismissed'}): this finding is closed and will not be raised "
            f"again on this merge request.{learned}",
            False,  # the human's call: they resolve it, or leave it open for others to read
        )
        go.to(entry, "closed")
        return
    if diff is not None and entry.anchor is not None and entry.anchor.sha != go.head:
        anchor = entry.anchor
        moved = diff.move(anchor.file, anchor.line, anchor.end_line)
        if moved.gone:
            go.to(entry, "outdated", note=f"the code at {anchor.file}:{anchor.line} is gone")
            return
        if moved.file and (
            moved.touched
            or (moved.file, moved.line, moved.end_line) != (anchor.file, anchor.line, anchor.end_line)
        ):
            entry.anchors.append(
                Anchor(sha=go.head, file=moved.file, line=moved.line, end_line=moved.end_line)
            )
            if len(entry.anchors) > MAX_ANCHORS:
                entry.anchors = entry.anchors[:1] + entry.anchors[-(MAX_ANCHORS - 1) :]
        if moved.touched:
            go.to(entry, "addressed", note=f"code changed at {moved.file}:{moved.line}")
    if thread.fix_claimed:
        entry.fix_claimed = True
    basis = entry.state == "addressed" or entry.fix_claimed
    just_verified = False
    if verdict is not None:
        reply = verdict.reply
        if verdict.status == "resolved" and basis:
            go.to(entry, "verified", note=reply)
            entry.fix_claimed, just_verified = False, True
        elif verdict.status == "not_addressed" and basis:
            go.to(entry, "reopened", note=reply)
            entry.fix_claimed = False
            go.act(entry.thread_id, "reopened", f"**Not fixed** in {go.head[:8]}: {reply}", False)
        elif verdict.status == "partial":
            entry.fix_claimed = False
            go.act(entry.thread_id, "partial", f"**Partly addressed** in {go.head[:8]}: {reply}", False)
    if entry.state != "verified":
        return
    if thread.unanswered_human is not None:
        go.step.vetoed.append(entry.thread_id)  # a human's reply waits for an answer: not resolved
        return
    reply = f"**Resolved** in {go.head[:8]}: {verdict.reply}" if just_verified and verdict else ""
    go.act(entry.thread_id, "resolved", reply, auto_resolve)
    if auto_resolve:
        go.to(entry, "resolved")
