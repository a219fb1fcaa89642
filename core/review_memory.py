"""What the MR's discussions say about earlier reviews: the last reviewed SHA, the agent's open
threads, what humans resolved or dismissed, and the fingerprints already posted.

Pure: it reads discussion dicts as GitLab returns them, so it is unit-tested without a server, and
it trusts markers only in notes authored by the agent itself, only the note's own trailing marker,
and only when it is authentic (core/markers.py): a marker the model copied into a finding's text, or
one it invented, is ignored and counted in `rejected_markers`. A summary written before markers were
signed still names the note to edit, but not the SHA to review from: one full review follows.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from core import markers

DISMISSAL = re.compile(
    r"\b(won'?t\s*fix|wontfix|intentional(ly)?|by\s+design|not\s+a\s+bug|false\s+positive|not\s+an\s+issue|"
    r"acceptable\s+risk)\b",
    re.IGNORECASE,
)


def is_dismissal(text: str) -> bool:
    return bool(DISMISSAL.search(text or ""))


# A human saying the finding is fixed: asks the agent to verify, it does not close anything itself.
FIX_CLAIM = re.compile(r"^\W*(fixed|done|addressed|resolved)\b|\bfixed\s+(in|by|with)\b", re.IGNORECASE)


def is_fix_claim(text: str) -> bool:
    return not is_dismissal(text) and bool(FIX_CLAIM.search(text or ""))


def rebuttal_reason(text: str) -> str:
    """The reason given with a dismissal ("" for a bare "won't fix"): what a project note keeps."""
    rest = DISMISSAL.sub(" ", text or "")
    words = re.findall(r"[A-Za-z0-9_]+", rest)
    return " ".join((text or "").split()) if len(words) >= 3 else ""


@dataclass
class ThreadNote:
    """A note after the first one in one of the agent's threads, oldest first."""

    author_id: int | None
    username: str
    at: str
    text: str
    agent: bool
    may_dismiss: bool = False  # the MR author or a member at or above DISMISS_MIN_ACCESS
    member: bool = False  # a project member at or above DISMISS_MIN_ACCESS (may teach the project)
    claims_fix: bool = False  # the implementer's signed "fixed in <commit>" answer (ImplementIssue)


@dataclass
class OwnThread:
    discussion_id: str
    first_note_id: int
    fingerprint: str
    reviewed_sha: str
    file: str | None
    line: int | None
    title: str
    body: str
    resolved: bool
    resolved_by_agent: bool
    outdated: bool
    inline: bool = False  # on a diff line (a DiffNote), not a general comment
    human_replies: list[str] = field(default_factory=list)
    resolution_replied_for: set[str] = field(default_factory=set)  # head SHAs already answered
    dismissed_in_reply: bool = False  # someone allowed to dismiss said "won't fix", "by design", ...
    # For the finding ledger (core/ledger.py): what the thread says beyond open or not.
    severity: str = "minor"
    category: str = "other"
    created_at: str = ""
    resolved_by: str = ""  # username
    resolved_at: str = ""
    notes: list[ThreadNote] = field(default_factory=list)

    @property
    def rebuttal(self) -> ThreadNote | None:
        """The first dismissal by someone allowed to dismiss."""
        return next((n for n in self.notes if not n.agent and n.may_dismiss and is_dismissal(n.text)), None)

    @property
    def unanswered_human(self) -> ThreadNote | None:
        """A human's note after the agent's last one that is not a "fixed" claim (which the agent's
        verification answers): while there is one, the agent does not resolve the thread."""
        last = self.notes[-1] if self.notes else None
        return last if last is not None and not last.agent and not is_fix_claim(last.text) else None

    @property
    def fix_claimed(self) -> bool:
        """A human said "fixed" after the agent's last note, or the agent's last note is the
        implementer's signed answer that a commit fixed it (its own draft MR's fix round). Either
        way it is a claim for the next review to verify, never a resolution by itself."""
        for note in reversed(self.notes):
            if note.agent:
                return note.claims_fix
            if is_fix_claim(note.text):
                return True
        return False

    @property
    def dismissed(self) -> bool:
        # Resolving a thread needs GitLab's own permission (Developer, or the MR author); a "by
        # design" reply counts only from someone allowed to dismiss (see `read_memory`).
        return (self.resolved and not self.resolved_by_agent) or self.dismissed_in_reply

    @property
    def open(self) -> bool:
        return not self.resolved and not self.dismissed


@dataclass
class ReviewMemory:
    own_threads: list[OwnThread] = field(default_factory=list)
    summary_note_id: int | None = None
    summary_discussion_id: str | None = None
    last_reviewed_sha: str | None = None
    failure_workflows: set[str] = field(default_factory=set)
    rejected_markers: int = 0  # markers in agent notes that were copied, invented or altered
    summary_body: str = ""  # the newest summary note's text (it carries the signed finding ledger)

    @property
    def fingerprints(self) -> dict[str, OwnThread]:
        return {t.fingerprint: t for t in self.own_threads}

    @property
    def open_threads(self) -> list[OwnThread]:
        return [t for t in self.own_threads if t.open]

    @property
    def dismissed_threads(self) -> list[OwnThread]:
        return [t for t in self.own_threads if t.dismissed]

    def thread(self, discussion_id: str) -> OwnThread | None:
        return next((t for t in self.own_threads if t.discussion_id == discussion_id), None)


def _author_id(note: dict[str, Any]) -> int | None:
    author = note.get("author") or {}
    return author.get("id") if isinstance(author, dict) else None


def _title_and_body(body: str) -> tuple[str, str]:
    # Finding notes start with "**[severity]** title"; keep the rest as the body.
    first, _, rest = body.partition("\n")
    title = re.sub(r"^\*\*\[[a-z]+\]\*\*\s*", "", first).strip()
    rest = re.sub(r"<!--.*?-->", "", rest, flags=re.DOTALL).strip()
    return title[:300], rest[:2000]


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _severity(body: str) -> str:
    match = re.match(r"^\*\*\[(critical|major|minor|info)\]\*\*", body)
    return match.group(1) if match else "minor"


def dismissal_authors(discussions: list[dict[str, Any]], agent_id: int | None) -> set[int]:
    """Authors of replies that read as a dismissal in the agent's threads: whose rights to check."""
    found = set()
    for discussion in discussions:
        notes = [n for n in discussion.get("notes") or [] if not n.get("system")]
        if not notes or _author_id(notes[0]) != agent_id:
            continue
        for note in notes[1:]:
            author = _author_id(note)
            if author is not None and author != agent_id and is_dismissal(note.get("body") or ""):
                found.add(author)
    return found


def read_memory(
    discussions: list[dict[str, Any]],
    agent_id: int | None,
    head_sha: str,
    dismissers: Collection[int] | None = None,
    members: Collection[int] = (),
) -> ReviewMemory:
    """What the MR's discussions say. `dismissers`: the users whose "won't fix" silences a finding
    (the MR author and members at or above DISMISS_MIN_ACCESS, looked up by the caller); anyone
    else's is still shown to the model as a reply, but the finding stays open. None: any human.
    `members`: those of them who are project members at or above DISMISS_MIN_ACCESS, whose reasons
    may become project notes (an MR author from a fork may dismiss on their MR, never teach)."""
    memory = ReviewMemory()
    if agent_id is None:
        return memory
    summary_at = ""
    for discussion in discussions:
        notes = [n for n in discussion.get("notes") or [] if not n.get("system")]
        if not notes:
            continue
        first = notes[0]
        if _author_id(first) != agent_id:
            continue
        body = first.get("body") or ""
        kind, values, problem = markers.read(body)
        if problem:
            memory.rejected_markers += 1
            markers.count_rejected(body)
        if kind == markers.SUMMARY and (values is not None or problem == "unsigned"):
            # The newest summary wins; GitLab lists discussions oldest first.
            if str(first.get("created_at", "")) >= summary_at:
                summary_at = str(first.get("created_at", ""))
                memory.summary_note_id = first.get("id")
                memory.summary_discussion_id = discussion.get("id")
                memory.last_reviewed_sha = values.get("last_reviewed_sha") if values else None
                memory.summary_body = body
            continue
        if values is None:
            continue
        if kind == markers.FAILURE:
            memory.failure_workflows.add(values.get("workflow", ""))
            continue
        if kind != markers.FINDING:
            continue
        finding = values
        position = first.get("position") or {}
        resolved_by = first.get("resolved_by") or {}
        title, text = _title_and_body(body)
        thread = OwnThread(
            discussion_id=str(discussion.get("id")),
            first_note_id=int(first.get("id", 0)),
            fingerprint=finding.get("fp", ""),
            reviewed_sha=finding.get("sha", ""),
            file=position.get("new_path") or position.get("old_path") or finding.get("file"),
            line=position.get("new_line") or position.get("old_line") or _number(finding.get("line")),
            title=title,
            body=text,
            resolved=bool(first.get("resolved")),
            resolved_by_agent=isinstance(resolved_by, dict) and resolved_by.get("id") == agent_id,
            outdated=bool(position) and position.get("head_sha") not in (None, head_sha),
            inline=bool(position),
            severity=finding.get("sev") or _severity(body),
            category=finding.get("cat", "other"),
            created_at=str(first.get("created_at") or ""),
            resolved_by=str(resolved_by.get("username", "")) if isinstance(resolved_by, dict) else "",
            resolved_at=str(first.get("resolved_at") or ""),
        )
        for note in notes[1:]:
            author = note.get("author") or {}
            claims_fix = False
            if _author_id(note) == agent_id:
                if (reply := markers.parse(note.get("body") or "", markers.RESOLUTION)) is not None:
                    thread.resolution_replied_for.add(reply.get("sha", ""))
                answer = markers.parse(note.get("body") or "", markers.IMPLEMENT_ANSWER)
                claims_fix = answer is not None and answer.get("action") == "fixed"
                text, allowed = "", False
            else:
                text = (note.get("body") or "")[:800]
                thread.human_replies.append(text)
                allowed = dismissers is None or _author_id(note) in dismissers
                thread.dismissed_in_reply = thread.dismissed_in_reply or (allowed and is_dismissal(text))
            thread.notes.append(
                ThreadNote(
                    author_id=_author_id(note),
                    username=str(author.get("username", "")) if isinstance(author, dict) else "",
                    at=str(note.get("created_at") or ""),
                    text=text,
                    agent=_author_id(note) == agent_id,
                    may_dismiss=allowed,
                    member=_author_id(note) in members,
                    claims_fix=claims_fix,
                )
            )
        memory.own_threads.append(thread)
    return memory
