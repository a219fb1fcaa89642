"""What the MR's discussions say about earlier reviews: the last reviewed SHA, the agent's open
threads, what humans resolved or dismissed, and the fingerprints already posted.

Pure: it reads discussion dicts as GitLab returns them, so it is unit-tested without a server, and
it trusts markers only in notes authored by the agent itself.
"""

from __future__ import annotations

import re
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

    @property
    def dismissed(self) -> bool:
        return (self.resolved and not self.resolved_by_agent) or any(map(is_dismissal, self.human_replies))

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


def read_memory(discussions: list[dict[str, Any]], agent_id: int | None, head_sha: str) -> ReviewMemory:
    memory = ReviewMemory()
    if agent_id is None:
        return memory
    summary_at = ""
    for discussion in discussions:
        notes = [n for n in discussion.get("notes") or [] if not n.get("system")]
        if not notes:
            continue
        first = notes[0]
        own = _author_id(first) == agent_id
        body = first.get("body") or ""
        if own and (summary := markers.parse(body, markers.SUMMARY)) is not None:
            # The newest summary wins; GitLab lists discussions oldest first.
            if str(first.get("created_at", "")) >= summary_at:
                summary_at = str(first.get("created_at", ""))
                memory.summary_note_id = first.get("id")
                memory.summary_discussion_id = discussion.get("id")
                memory.last_reviewed_sha = summary.get("last_reviewed_sha")
            continue
        if own and (failure := markers.parse(body, markers.FAILURE)) is not None:
            memory.failure_workflows.add(failure.get("workflow", ""))
            continue
        finding = markers.parse(body, markers.FINDING) if own else None
        if finding is None:
            continue
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
                thread.human_replies.append((note.get("body") or "")[:800])
        memory.own_threads.append(thread)
    return memory
