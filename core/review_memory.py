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
) -> ReviewMemory:
    """What the MR's discussions say. `dismissers`: the users whose "won't fix" silences a finding
    (the MR author and members at or above DISMISS_MIN_ACCESS, looked up by the caller); anyone
    else's is still shown to the model as a reply, but the finding stays open. None: any human."""
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
            line=position.get("new_line") or position.get("old_line"),
            title=title,
            body=text,
            resolved=bool(first.get("resolved")),
            resolved_by_agent=isinstance(resolved_by, dict) and resolved_by.get("id") == agent_id,
            outdated=bool(position) and position.get("head_sha") not in (None, head_sha),
            inline=bool(position),
        )
        for note in notes[1:]:
            if _author_id(note) == agent_id:
                if (reply := markers.parse(note.get("body") or "", markers.RESOLUTION)) is not None:
                    thread.resolution_replied_for.add(reply.get("sha", ""))
            else:
                text = (note.get("body") or "")[:800]
                thread.human_replies.append(text)
                allowed = dismissers is None or _author_id(note) in dismissers
                thread.dismissed_in_reply = thread.dismissed_in_reply or (allowed and is_dismissal(text))
        memory.own_threads.append(thread)
    return memory
