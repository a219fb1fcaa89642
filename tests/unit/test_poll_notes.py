"""The GitLab poller's note filter: the Note Hook intake's rules, applied to GitLab's discussions."""

from __future__ import annotations

from datetime import UTC, datetime

from core.poll_notes import Agent, notes_to_answer

AGENT = Agent(id=9, username="copilot-agent")
SINCE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DEV = {"id": 2, "username": "dev"}
BOT = {"id": 9, "username": "copilot-agent"}


def note(nid: int, body: str, author=DEV, at: str = "2026-01-01T12:05:00Z", **extra) -> dict:
    return {"id": nid, "body": body, "author": author, "created_at": at, "system": False, **extra}


def thread(notes: list[dict], individual: bool = False, did: str = "a" * 40) -> dict:
    return {"id": did, "individual_note": individual, "notes": notes}


def answered(*discussions: dict) -> list[int]:
    return [n.note_id for n in notes_to_answer(discussions, AGENT, SINCE)]


def test_mentions_and_replies_in_the_agents_threads_are_answered():
    assert answered(
        thread([note(1, "@copilot-agent why?")], individual=True),
        thread([note(2, "finding", author=BOT), note(3, "fixed it")]),  # reply in the agent's thread
    ) == [1, 3]


def test_what_the_webhook_ignores_the_poller_ignores():
    assert (
        answered(
            thread([note(1, "just talking")], individual=True),  # no mention, not a reply
            thread([note(2, "human thread"), note(3, "human reply")]),  # agent not in the thread
            thread([note(4, "@copilot-agent", system=True)], individual=True),  # system note
            thread([note(5, "@copilot-agent x <!-- gitlab-copilot-agent:reply note=1 -->")], individual=True),
            thread([note(6, "@copilot-agent me", author={"id": 9, "username": "renamed"})], individual=True),
            thread([note(7, "see `@copilot-agent`")], individual=True),  # inside code: no mention
            thread(
                [note(8, "@copilot-agent old", at="2026-01-01T11:59:59Z")], individual=True
            ),  # before since
            thread([note(9, "@copilot-agent?", at="not a date")], individual=True),
        )
        == []
    )


def test_an_odd_discussion_id_is_left_for_the_workflow_to_look_up():
    (found,) = notes_to_answer([thread([note(1, "@copilot-agent hi")], did="../x")], AGENT, SINCE)
    assert found.discussion_id is None and found.note_id == 1
