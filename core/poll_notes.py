"""Which notes of an open MR the GitLab poller hands to MRDiscussion: the ones the Note Hook would.

The webhook (api/intake_note.py) starts MRDiscussion for a human, non-system MR note that carries no
marker of the agent and either @mentions the agent or replies in a thread; the workflow's first
activity then decides the rest with GitLab's data (thread participation, the author's role, spend
limits). The poller applies the same filters here and, because it already holds the discussion,
also the participation test for replies, so it starts no workflow that would only end "ignored".
Both paths start the run under `discussion:<project>:<note>`, so a note seen by both is answered
once.

Only notes created after `since` count (the poll's watermark minus its clock-skew overlap); an older
note was the webhook's or an earlier poll's, and its workflow ID (or the agent's reply marker, once
Temporal has forgotten the ID) keeps it from being answered twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core import markers
from core.mentions import mentions

PREFIX_MARKER = f"<!-- {markers.PREFIX}:"
_DISCUSSION_ID = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(frozen=True)
class Agent:
    id: int | None
    username: str

    def wrote(self, author: Mapping[str, Any] | None) -> bool:
        author = author or {}
        if self.id is not None and author.get("id") == self.id:
            return True
        return str(author.get("username", "")).lower() == self.username.lower()


@dataclass(frozen=True)
class NoteToAnswer:
    note_id: int
    discussion_id: str | None  # None when GitLab's ID has an unexpected shape: the workflow looks it up
    created_at: str


def _created(note: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(note.get("created_at", "")).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def notes_to_answer(
    discussions: Iterable[Mapping[str, Any]], agent: Agent, since: datetime
) -> list[NoteToAnswer]:
    """The notes of these discussions (GitLab's `/discussions` JSON) the agent should answer."""
    found: list[NoteToAnswer] = []
    for discussion in discussions:
        notes = [n for n in discussion.get("notes") or [] if isinstance(n, Mapping)]
        threaded = not discussion.get("individual_note", False)
        agent_in_thread = threaded and any(agent.wrote(n.get("author")) for n in notes)
        raw_id = str(discussion.get("id") or "")
        for note in notes:
            created = _created(note)
            if created is None or created <= since:
                continue
            body = note.get("body") if isinstance(note.get("body"), str) else ""
            if note.get("system") or PREFIX_MARKER in body or agent.wrote(note.get("author")):
                continue
            if not (mentions(body, agent.username) or agent_in_thread):
                continue
            found.append(
                NoteToAnswer(
                    note_id=int(note["id"]),
                    discussion_id=raw_id if _DISCUSSION_ID.match(raw_id) else None,
                    created_at=created.isoformat(),
                )
            )
    return found
