"""Draft notes and commit statuses of the GitLab stand-in, through real python-gitlab."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gitlab
import pytest

from standins.gitlab import GitLabStandIn

PROJECT = "grp/app"
BASE = "".join(f"line {i}\n" for i in range(1, 21))
HEAD = BASE.replace("line 5\n", "changed 5\n")


@pytest.fixture
def gl(tmp_path: Path) -> Iterator[GitLabStandIn]:
    with GitLabStandIn(tmp_path / "gitlab") as server:
        server.add_user("bot")
        server.add_user("alice")
        server.add_user("guest")
        server.create_project(PROJECT, {"a.py": BASE}, members={"bot": 30, "alice": 40, "guest": 10})
        server.commit(PROJECT, "feature", {"a.py": HEAD}, "change line 5")
        yield server


def client(gl: GitLabStandIn, user: str = "bot") -> gitlab.Gitlab:
    return gitlab.Gitlab(gl.url, private_token=gl.store.user_named(user).token, retry_transient_errors=False)


def mr_of(gl: GitLabStandIn, user: str = "bot") -> Any:
    iid = next(iter(gl.store.mrs.values())).iid
    return client(gl, user).projects.get(PROJECT, lazy=True).mergerequests.get(iid)


@pytest.fixture
def mr(gl: GitLabStandIn) -> Any:
    gl.create_mr(PROJECT, "feature", title="Change", author="alice")
    return mr_of(gl)


def position(mr: Any, new_line: int) -> dict[str, Any]:
    return {
        "position_type": "text",
        **mr.diff_refs,
        "old_path": "a.py",
        "new_path": "a.py",
        "new_line": new_line,
    }


# --- draft notes ----------------------------------------------------------------------------------
def test_drafts_are_invisible_until_bulk_publish_and_notify_once(gl, mr):
    mr.draft_notes.create({"note": "inline", "position": position(mr, 5)})
    mr.draft_notes.create({"note": "general"})
    alice_mr = mr_of(gl, "alice")
    assert alice_mr.draft_notes.list() == []  # another user sees none of the bot's drafts
    assert mr.discussions.list() == []
    with pytest.raises(gitlab.GitlabGetError) as err:
        alice_mr.draft_notes.get(mr.draft_notes.list()[0].id)
    assert err.value.response_code == 404

    mr.draft_notes.bulk_publish()
    threads = [d.attributes for d in mr.discussions.list()]
    assert [t["notes"][0]["body"] for t in threads] == ["inline", "general"]
    assert threads[0]["notes"][0]["type"] == "DiffNote" and threads[1]["notes"][0]["resolvable"]
    assert mr.draft_notes.list() == []
    (notification,) = gl.notifications(PROJECT, mr.iid)
    assert (notification.kind, notification.notes) == ("review", 2)


def test_draft_positions_are_validated_at_creation(gl, mr):
    with pytest.raises(gitlab.GitlabCreateError) as err:
        mr.draft_notes.create({"note": "x", "position": position(mr, 12)})  # a line outside the diff
    assert err.value.response_code == 400 and "line_code" in str(err.value)
    with pytest.raises(gitlab.GitlabCreateError) as err:
        mr.draft_notes.create({"note": "x", "in_reply_to_discussion_id": "f" * 40})
    assert err.value.response_code == 400 and "Thread to reply to cannot be found" in str(err.value)
    with pytest.raises(gitlab.GitlabCreateError):
        mr.draft_notes.create({"note": ""})
    assert mr.draft_notes.list() == []


def test_reply_draft_resolves_its_thread_and_publish_one_notifies_per_note(gl, mr):
    thread = mr.discussions.create({"body": "finding", "position": position(mr, 5)})
    draft = mr.draft_notes.create(
        {"note": "fixed", "in_reply_to_discussion_id": thread.id, "resolve_discussion": True}
    )
    draft.note = "fixed in abc"
    draft.save()
    other = mr.draft_notes.create({"note": "to be dropped"})
    mr.draft_notes.delete(other.id)
    mr.draft_notes.get(draft.id).publish()
    notes = mr.discussions.get(thread.id).attributes["notes"]
    assert [n["body"] for n in notes] == ["finding", "fixed in abc"]
    assert all(n["resolved"] for n in notes)
    assert [n.kind for n in gl.notifications(PROJECT, mr.iid)] == ["note", "note"]  # thread, then publish


def test_reply_drafts_resolve_or_reopen_their_threads_in_one_bulk_publish(gl, mr):
    """GitLab's PublishService: a reply draft resolves its thread with `resolve_discussion`, and a
    reply draft without it reopens a resolved thread; the whole batch is one notification."""
    to_resolve = mr.discussions.create({"body": "finding 1", "position": position(mr, 5)})
    to_reopen = mr.discussions.create({"body": "finding 2"})
    mr.discussions.update(to_reopen.id, {"resolved": True})
    mr.draft_notes.create(
        {"note": "fixed", "in_reply_to_discussion_id": to_resolve.id, "resolve_discussion": True}
    )
    mr.draft_notes.create({"note": "not fixed after all", "in_reply_to_discussion_id": to_reopen.id})
    mr.draft_notes.create({"note": "a new finding", "position": position(mr, 5)})
    mr.draft_notes.bulk_publish()

    resolved = mr.discussions.get(to_resolve.id).attributes["notes"]
    reopened = mr.discussions.get(to_reopen.id).attributes["notes"]
    assert [n["body"] for n in resolved] == ["finding 1", "fixed"] and all(n["resolved"] for n in resolved)
    assert [n["body"] for n in reopened] == ["finding 2", "not fixed after all"]
    assert not any(n["resolved"] for n in reopened)
    assert [(n.kind, n.notes) for n in gl.notifications(PROJECT, mr.iid)][-1] == ("review", 3)


# --- commit statuses ------------------------------------------------------------------------------
def statuses(gl: GitLabStandIn, sha: str, user: str = "bot") -> Any:
    return client(gl, user).projects.get(PROJECT, lazy=True).commits.get(sha, lazy=True).statuses


def test_commit_status_moves_running_to_success_and_refuses_what_gitlab_refuses(gl, mr):
    sha = mr.sha
    api = statuses(gl, sha)
    running = api.create({"state": "running", "name": "copilot-review", "ref": "feature"})
    assert running.status == "running" and running.started_at
    with pytest.raises(gitlab.GitlabCreateError) as err:
        api.create({"state": "running", "name": "copilot-review", "ref": "feature"})
    assert err.value.response_code == 400 and "Cannot transition status via :run from :running" in str(
        err.value
    )
    with pytest.raises(gitlab.GitlabCreateError) as err:
        api.create({"state": "pending", "name": "copilot-review", "ref": "feature"})
    assert "via :enqueue from :running" in str(err.value)
    done = api.create(
        {
            "state": "success",
            "name": "copilot-review",
            "description": "2 findings",
            "target_url": "http://x/1",
        }
    )
    assert (done.id, done.status, done.description) == (running.id, "success", "2 findings")
    again = api.create({"state": "running", "name": "copilot-review"})  # a finished one is never changed
    assert again.id != running.id
    assert [s.status for s in api.list()] == ["running"]  # latest of the name
    assert [s["status"] for s in gl.commit_statuses(PROJECT, sha)] == ["success", "running"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"state": "bogus"}, 400),
        ({"state": "success", "target_url": "javascript:alert(1)"}, 400),
    ],
)
def test_commit_status_rejects_bad_input(gl, mr, data, code):
    with pytest.raises(gitlab.GitlabCreateError) as err:
        statuses(gl, mr.sha).create(data)
    assert err.value.response_code == code


def test_commit_status_needs_developer_and_a_known_commit(gl, mr):
    with pytest.raises(gitlab.GitlabCreateError) as err:
        statuses(gl, mr.sha, "guest").create({"state": "running"})
    assert err.value.response_code == 403
    with pytest.raises(gitlab.GitlabCreateError) as err:
        statuses(gl, "0" * 40).create({"state": "running"})
    assert err.value.response_code == 404
