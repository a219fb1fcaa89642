"""What one MR discussion says about a note the agent may answer: is the thread the agent's, has
the agent answered this note already, and the conversation so far.

Pure: it reads discussion dicts as GitLab returns them (`GET .../discussions/:id`), so it is
unit-tested without a server. Markers are trusted only in notes authored by the agent itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core import markers

MAX_THREAD_NOTES = 50
MAX_NOTE_CHARS = 4000


@dataclass(frozen=True)
class ThreadNote:
    author: str
    body: str
    by_agent: bool


@dataclass
class ThreadView:
    found: bool = False  # the note is in this discussion
    system: bool = False
    author_id: int | None = None
    author_username: str = ""
    body: str = ""
    agent_posted: bool = False  # the agent wrote in this thread before the note
    own_finding: bool = False  # the thread starts with one of the agent's review findings
    already_replied: bool = False
    resolvable: bool = False
    resolved: bool = False
    position: str = ""  # "path:line" for inline threads
    history: list[ThreadNote] = field(default_factory=list)  # up to and including the note


def _author(note: dict[str, Any]) -> dict[str, Any]:
    author = note.get("author")
    return author if isinstance(author, dict) else {}


def _position(note: dict[str, Any]) -> str:
    position = note.get("position")
    if not isinstance(position, dict):
        return ""
    path = position.get("new_path") or position.get("old_path") or ""
    line = position.get("new_line") or position.get("old_line")
    return f"{path}:{line}" if path and line else str(path)


def read_thread(discussion: dict[str, Any], note_id: int, agent_id: int | None) -> ThreadView:
    notes = [n for n in discussion.get("notes") or [] if isinstance(n, dict)]
    view = ThreadView()
    if not notes:
        return view
    first = notes[0]
    first_by_agent = agent_id is not None and _author(first).get("id") == agent_id
    view.own_finding = first_by_agent and markers.parse(first.get("body") or "", markers.FINDING) is not None
    view.position = _position(first)
    view.resolvable = any(bool(n.get("resolvable")) for n in notes)
    view.resolved = view.resolvable and all(bool(n.get("resolved")) for n in notes if n.get("resolvable"))
    for note in notes:
        author = _author(note)
        by_agent = agent_id is not None and author.get("id") == agent_id
        body = str(note.get("body") or "")
        if by_agent and markers.has(body, markers.REPLY, note=str(note_id)):
            view.already_replied = True
        if view.found:
            continue  # later notes only matter for the reply marker
        if note.get("id") == note_id:
            view.found = True
            view.system = bool(note.get("system"))
            view.author_id = author.get("id") if isinstance(author.get("id"), int) else None
            view.author_username = str(author.get("username") or "")
            view.body = body
        elif by_agent and not note.get("system"):
            view.agent_posted = True
        if not note.get("system"):
            view.history.append(
                ThreadNote(str(author.get("username") or "unknown"), body[:MAX_NOTE_CHARS], by_agent)
            )
    view.history = view.history[-MAX_THREAD_NOTES:]
    return view
