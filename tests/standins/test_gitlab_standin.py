"""The GitLab stand-in, driven only through real python-gitlab and real git."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gitlab
import pytest
import requests

from standins.gitlab import GitLabStandIn

PROJECT = "grp/app"
BASE_A = "".join(f"line {i}\n" for i in range(1, 41))
# Line 10 removed, line 20 changed, a line added after 30.
HEAD_A = "".join(
    ("" if i == 10 else "changed 20\n" if i == 20 else f"line {i}\n") + ("inserted\n" if i == 30 else "")
    for i in range(1, 41)
)
LINE_CODE_400 = '400 Bad request - Note {:line_code=>["can\'t be blank", "must be a valid line code"]}'


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324


@pytest.fixture
def gl(tmp_path: Path) -> Iterator[GitLabStandIn]:
    with GitLabStandIn(tmp_path / "gitlab") as server:
        server.add_user("bot", name="Agent Bot")
        server.add_user("alice")
        server.add_user("mallory")
        server.create_project(
            PROJECT,
            {"a.py": BASE_A, "old_name.py": "keep me\n" * 5, "gone.py": "bye\nbye\n"},
            members={"bot": 30, "alice": 40},
        )
        yield server


@pytest.fixture
def client(gl: GitLabStandIn) -> gitlab.Gitlab:
    token = gl.store.user_named("bot").token
    return gitlab.Gitlab(gl.url, private_token=token, retry_transient_errors=False)


def feature_mr(gl: GitLabStandIn) -> Any:
    gl.commit(
        PROJECT,
        "feature",
        {"a.py": HEAD_A, "new.py": "n1\nn2\nn3\n", "gone.py": None},
        "Feature work",
        renames={"old_name.py": "new_name.py"},
    )
    return gl.create_mr(PROJECT, "feature", title="Feature", author="alice")


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd or "/tmp")}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True, timeout=60
    ).stdout


def auth_header(token: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"oauth2:{token}".encode()).decode()


def clone(gl: GitLabStandIn, dest: Path, token: str) -> Path:
    git("-c", f"http.extraHeader={auth_header(token)}", "clone", "-q", gl.git_url(PROJECT), str(dest))
    git("config", "user.name", "Dev", cwd=dest)
    git("config", "user.email", "dev@example.invalid", cwd=dest)
    return dest


class HookReceiver:
    def __init__(self) -> None:
        received: list[tuple[Any, dict[str, Any]]] = []
        self.received = received
        self.arrived = threading.Semaphore(0)
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.headers, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                arrived.release()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    hook = HookReceiver()
    yield hook
    hook.close()


# --- auth ----------------------------------------------------------------------------------------


def test_bad_or_missing_token_is_401(gl: GitLabStandIn) -> None:
    with pytest.raises(gitlab.GitlabAuthenticationError) as err:
        gitlab.Gitlab(gl.url, private_token="glpat-wrong").auth()
    assert err.value.response_code == 401
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(f"{gl.url}/api/v4/version")  # noqa: S310
    assert raw.value.code == 401
    assert json.loads(raw.value.read()) == {"message": "401 Unauthorized"}
    # A rejected POST must not desynchronise a kept-alive connection.
    session = requests.Session()
    url = f"{gl.url}/api/v4/projects/1/merge_requests"
    denied = session.post(url, json={"title": "x" * 5000}, headers={"PRIVATE-TOKEN": "nope"}, timeout=5)
    assert denied.status_code == 401
    token = gl.store.user_named("bot").token
    assert session.get(url, headers={"PRIVATE-TOKEN": token}, timeout=5).json() == []


def test_bearer_token_identifies_caller(gl: GitLabStandIn) -> None:
    token = gl.store.user_named("alice").token
    response = requests.get(f"{gl.url}/api/v4/user", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_git_requires_token_as_basic_password(gl: GitLabStandIn, tmp_path: Path) -> None:
    response = requests.get(f"{gl.git_url(PROJECT)}/info/refs?service=git-upload-pack", timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="GitLab"'
    with pytest.raises(subprocess.CalledProcessError):
        clone(gl, tmp_path / "denied", "glpat-wrong")


# --- users, projects, pagination -----------------------------------------------------------------


def test_user_project_and_members(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    client.auth()
    assert client.user.username == "bot"
    assert client.version()[0] == "17.11.0-ee"
    [alice] = client.users.list(username="alice")
    project = client.projects.get(PROJECT)
    assert project.id == client.projects.get(project.id).id
    assert project.path_with_namespace == PROJECT
    assert project.members_all.get(alice.id).access_level == 40
    mallory = gl.store.user_named("mallory")
    with pytest.raises(gitlab.GitlabGetError) as err:
        project.members_all.get(mallory.id)
    assert err.value.response_code == 404
    with pytest.raises(gitlab.GitlabGetError):
        client.projects.get("grp/missing")


def test_pagination_follows_link_header(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    mr = feature_mr(gl)
    for i in range(7):
        gl.add_note(PROJECT, mr.iid, "alice", f"note {i}")
    project_mr = client.projects.get(PROJECT, lazy=True).mergerequests.get(mr.iid, lazy=True)
    before = gl.request_count("GET", "/notes")
    notes = project_mr.notes.list(get_all=True, per_page=3)
    assert sorted(n.body for n in notes) == [f"note {i}" for i in range(7)]
    assert gl.request_count("GET", "/notes") - before == 3
    response = requests.get(
        f"{gl.url}/api/v4/projects/1/merge_requests/1/notes?per_page=3&page=3",
        headers={"PRIVATE-TOKEN": gl.store.user_named("bot").token},
        timeout=5,
    )
    assert response.headers["X-Total"] == "7"
    assert response.headers["X-Total-Pages"] == "3"
    assert response.headers["X-Next-Page"] == ""
    assert 'rel="next"' not in response.headers["Link"]
    assert len(response.json()) == 1


# --- merge requests, versions, diffs -------------------------------------------------------------


def test_mr_refs_and_diffs_match_git(client: gitlab.Gitlab, gl: GitLabStandIn, tmp_path: Path) -> None:
    feature_mr(gl)
    work = clone(gl, tmp_path / "w", gl.store.user_named("bot").token)
    head = git("rev-parse", "origin/feature", cwd=work).strip()
    start = git("rev-parse", "origin/main", cwd=work).strip()
    base = git("merge-base", "origin/main", "origin/feature", cwd=work).strip()

    mr = client.projects.get(PROJECT).mergerequests.get(1)
    assert mr.diff_refs == {"base_sha": base, "start_sha": start, "head_sha": head}
    assert mr.sha == head and mr.draft is False and mr.state == "opened"
    assert mr.author["username"] == "alice"
    [version] = mr.diffs.list()
    assert (version.base_commit_sha, version.start_commit_sha, version.head_commit_sha) == (base, start, head)
    changes = {(c["old_path"], c["new_path"]): c for c in mr.changes()["changes"]}
    assert set(changes) == {
        ("a.py", "a.py"),
        ("new.py", "new.py"),
        ("gone.py", "gone.py"),
        ("old_name.py", "new_name.py"),
    }
    assert changes[("new.py", "new.py")]["new_file"] and changes[("new.py", "new.py")]["a_mode"] == "0"
    assert changes[("gone.py", "gone.py")]["deleted_file"]
    assert changes[("old_name.py", "new_name.py")]["renamed_file"]
    expected = git("diff", base, head, "--", "a.py", cwd=work)
    assert changes[("a.py", "a.py")]["diff"] == expected[expected.index("@@") :]
    paged = requests.get(
        f"{gl.url}/api/v4/projects/{PROJECT.replace('/', '%2F')}/merge_requests/1/diffs?per_page=2",
        headers={"PRIVATE-TOKEN": gl.store.user_named("bot").token},
        timeout=5,
    )
    assert paged.headers["X-Total"] == "4" and len(paged.json()) == 2
    commits = mr.commits()
    assert [c.id for c in commits] == [head]
    detail = mr.diffs.get(version.id)
    assert len(detail.diffs) == 4 and detail.commits[0]["id"] == head


def test_create_mr_rules(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    gl.commit(PROJECT, "wip", {"x.py": "x\n"}, "wip")
    project = client.projects.get(PROJECT)
    mr = project.mergerequests.create({"source_branch": "wip", "target_branch": "main", "title": "Draft: x"})
    assert mr.draft and mr.work_in_progress and mr.iid == 1
    with pytest.raises(gitlab.GitlabCreateError) as err:
        project.mergerequests.create({"source_branch": "wip", "target_branch": "main", "title": "again"})
    assert err.value.response_code == 409
    assert "Another open merge request already exists for this source branch: !1" in err.value.error_message
    missing = requests.post(
        f"{gl.url}/api/v4/projects/1/merge_requests",
        json={"source_branch": "wip", "target_branch": "main"},
        headers={"PRIVATE-TOKEN": gl.store.user_named("bot").token},
        timeout=5,
    )
    assert (missing.status_code, missing.json()) == (400, {"error": "title is missing"})
    mr.title = "Ready now"
    mr.description = "body"
    mr.save()
    again = project.mergerequests.get(1)
    assert (again.title, again.description, again.draft) == ("Ready now", "body", False)
    listed = project.mergerequests.list(state="opened", source_branch="wip", get_all=True)
    assert [m.iid for m in listed] == [1]
    assert (
        project.mergerequests.list(state="opened", updated_after="2999-01-01T00:00:00Z", get_all=True) == []
    )


def test_repository_endpoints(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    sha = gl.commit(PROJECT, "feature", {"a.py": HEAD_A}, "change a")
    project = client.projects.get(PROJECT)
    assert project.branches.get("feature").commit["id"] == sha
    assert {b.name for b in project.branches.list(get_all=True)} == {"main", "feature"}
    with pytest.raises(gitlab.GitlabGetError) as err:
        project.branches.get("nope")
    assert err.value.response_code == 404
    assert project.files.raw(file_path="a.py", ref="feature") == HEAD_A.encode()
    with pytest.raises(gitlab.GitlabGetError):
        project.files.raw(file_path="missing.py", ref="feature")
    compare = project.repository_compare("main", "feature")
    assert [c["id"] for c in compare["commits"]] == [sha]
    assert [d["new_path"] for d in compare["diffs"]] == ["a.py"]
    assert compare["compare_same_ref"] is False
    assert project.repository_compare("main", "main")["compare_same_ref"] is True


# --- pushes, versions, webhooks ------------------------------------------------------------------


def test_git_push_adds_version_and_sends_webhook(
    client: gitlab.Gitlab, gl: GitLabStandIn, tmp_path: Path, receiver: HookReceiver
) -> None:
    gl.set_webhook(receiver.url, "s3cret")
    first = feature_mr(gl)
    assert receiver.arrived.acquire(timeout=5)
    _, opened = receiver.received[0]
    assert opened["object_attributes"]["action"] == "open"
    old_head = first.latest.head_sha

    work = clone(gl, tmp_path / "w", gl.store.user_named("bot").token)
    git("checkout", "-q", "feature", cwd=work)
    (work / "a.py").write_text(HEAD_A + "pushed\n")
    git("commit", "-qam", "push more", cwd=work)
    git("-c", f"http.extraHeader={auth_header(gl.store.user_named('bot').token)}", "push", "-q", "origin",
        "feature", cwd=work)  # fmt: skip
    new_head = git("rev-parse", "HEAD", cwd=work).strip()

    assert receiver.arrived.acquire(timeout=5)
    headers, payload = receiver.received[1]
    assert headers["X-Gitlab-Event"] == "Merge Request Hook"
    assert headers["X-Gitlab-Token"] == "s3cret"
    assert headers["Idempotency-Key"] and headers["X-Gitlab-Event-UUID"]
    attrs = payload["object_attributes"]
    assert (attrs["action"], attrs["oldrev"], attrs["last_commit"]["id"]) == ("update", old_head, new_head)
    assert payload["user"]["username"] == "bot"
    assert payload["project"]["path_with_namespace"] == PROJECT
    assert payload["project"]["git_http_url"] == gl.git_url(PROJECT)

    versions = client.projects.get(PROJECT).mergerequests.get(1).diffs.list()
    assert [v.head_commit_sha for v in versions] == [new_head, old_head]
    assert gl.push_log[-1].branch == "feature" and gl.push_log[-1].forced is False

    git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    (work / "other.py").write_text("rewritten\n")
    git("add", "other.py", cwd=work)
    git("commit", "-qm", "rewrite", cwd=work)
    git("-c", f"http.extraHeader={auth_header(gl.store.user_named('bot').token)}", "push", "-q", "-f", "origin",
        "feature", cwd=work)  # fmt: skip
    assert gl.push_log[-1].forced is True


def test_chunked_push_and_clean_clone(gl: GitLabStandIn, tmp_path: Path) -> None:
    token = gl.store.user_named("bot").token
    work = clone(gl, tmp_path / "w", token)
    assert token not in (work / ".git" / "config").read_text()
    (work / "blob.bin").write_bytes(os.urandom(256 * 1024))
    git("add", "blob.bin", cwd=work)
    git("commit", "-qm", "big", cwd=work)
    git("-c", f"http.extraHeader={auth_header(token)}", "-c", "http.postBuffer=4096", "push", "-q", "origin",
        "HEAD:refs/heads/big", cwd=work)  # fmt: skip
    assert gl.branch_sha(PROJECT, "big") == git("rev-parse", "HEAD", cwd=work).strip()
    assert any(r.chunked and r.path.endswith("git-receive-pack") for r in gl.requests)


def test_add_note_sends_note_hook(gl: GitLabStandIn, receiver: HookReceiver) -> None:
    mr = feature_mr(gl)
    gl.set_webhook(receiver.url, "s")
    note = gl.add_note(PROJECT, mr.iid, "alice", "@bot please look")
    assert receiver.arrived.acquire(timeout=5)
    headers, payload = receiver.received[0]
    assert headers["X-Gitlab-Event"] == "Note Hook"
    assert payload["object_attributes"]["note"] == "@bot please look"
    assert payload["merge_request"]["iid"] == mr.iid
    assert gl.note_hook_payload(PROJECT, mr.iid, note.id)["object_attributes"]["id"] == note.id


# --- positions -----------------------------------------------------------------------------------


def position(mr: Any, old_path: str, new_path: str, old: int | None, new: int | None) -> dict[str, Any]:
    refs = mr.diff_refs
    return {"position_type": "text", **refs, "old_path": old_path, "new_path": new_path,
            "old_line": old, "new_line": new}  # fmt: skip


@pytest.mark.parametrize(
    ("paths", "old", "new"),
    [
        (("a.py", "a.py"), None, 19),  # added line "changed 20"
        (("a.py", "a.py"), 10, None),  # removed line 10
        (("a.py", "a.py"), 20, None),  # removed old line 20
        (("a.py", "a.py"), 21, 20),  # context line after the change
        (("a.py", "a.py"), None, 30),  # "inserted"
        (("new.py", "new.py"), None, 3),
        (("gone.py", "gone.py"), 2, None),
    ],
)
def test_valid_positions_accepted(
    client: gitlab.Gitlab, gl: GitLabStandIn, paths: tuple[str, str], old: int | None, new: int | None
) -> None:
    feature_mr(gl)
    mr = client.projects.get(PROJECT).mergerequests.get(1)
    discussion = mr.discussions.create({"body": "inline", "position": position(mr, *paths, old, new)})
    note = discussion.attributes["notes"][0]
    assert note["type"] == "DiffNote" and note["resolvable"] and not note["resolved"]
    assert note["position"]["new_path"] == paths[1]


def test_rename_with_content_change_is_commentable(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    gl.commit(PROJECT, "mv", {"new_name.py": "keep me\n" * 4 + "edited\n"}, "mv",
              renames={"old_name.py": "new_name.py"})  # fmt: skip
    gl.create_mr(PROJECT, "mv", title="rename")
    mr = client.projects.get(PROJECT).mergerequests.get(1)
    mr.discussions.create({"body": "ok", "position": position(mr, "old_name.py", "new_name.py", None, 5)})
    with pytest.raises(gitlab.GitlabCreateError):
        mr.discussions.create({"body": "x", "position": position(mr, "new_name.py", "new_name.py", None, 5)})


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"new_line": 2, "old_line": None}, "unchanged line outside every hunk"),
        ({"new_line": 20, "old_line": 20}, "context pair not on one diff line"),
        ({"new_line": 20, "old_line": None}, "context line given new_line only"),
        ({"new_line": 19, "old_line": 20}, "added line given an old_line"),
        ({"new_line": None, "old_line": None}, "no line at all"),
        ({"new_path": "b.py", "old_path": "b.py", "new_line": 19, "old_line": None}, "file not in diff"),
        ({"head_sha": "0" * 40, "new_line": 19, "old_line": None}, "head_sha of no version"),
        ({"position_type": "image", "new_line": 19, "old_line": None}, "not a text position"),
        ({"new_line": "nineteen", "old_line": None}, "not a number"),
    ],
)
def test_invalid_positions_rejected_like_gitlab(
    client: gitlab.Gitlab, gl: GitLabStandIn, change: dict[str, Any], why: str
) -> None:
    feature_mr(gl)
    mr = client.projects.get(PROJECT).mergerequests.get(1)
    with pytest.raises(gitlab.GitlabCreateError) as err:
        mr.discussions.create(
            {"body": why, "position": {**position(mr, "a.py", "a.py", None, None), **change}}
        )
    assert err.value.response_code == 400, why
    assert json.loads(err.value.response_body) == {"message": LINE_CODE_400}, why
    assert gl.discussions(PROJECT, 1) == []


def test_position_on_an_older_version_is_accepted(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    feature_mr(gl)
    mr = client.projects.get(PROJECT).mergerequests.get(1)
    stale = position(mr, "a.py", "a.py", None, 19)
    gl.commit(PROJECT, "feature", {"z.py": "z\n"}, "more")
    mr.discussions.create({"body": "old version", "position": stale})
    assert len(mr.diffs.list()) == 2


def test_form_encoded_position_and_line_range(gl: GitLabStandIn) -> None:
    feature_mr(gl)
    token = gl.store.user_named("bot").token
    refs = gl.mr_json(PROJECT, 1)["diff_refs"]
    code = sha1("a.py")
    # Around the change at old line 20 (new numbers are one lower after the removed line 10):
    # context old 19/new 18 (_19_18), removed old 20 (_20_19), added new 19 (_21_19).
    form = {
        "body": "range",
        "position[position_type]": "text",
        **{f"position[{k}]": v for k, v in refs.items()},
        "position[old_path]": "a.py",
        "position[new_path]": "a.py",
        "position[new_line]": "19",
        "position[line_range][start][line_code]": f"{code}_19_18",
        "position[line_range][start][type]": "",
        "position[line_range][end][line_code]": f"{code}_21_19",
        "position[line_range][end][type]": "new",
    }
    url = f"{gl.url}/api/v4/projects/1/merge_requests/1/discussions"
    ok = requests.post(url, data=form, headers={"PRIVATE-TOKEN": token}, timeout=5)
    assert ok.status_code == 201, ok.text
    assert ok.json()["notes"][0]["position"]["line_range"]["end"]["line_code"] == f"{code}_21_19"
    reversed_range = {
        **form,
        "position[line_range][start][line_code]": f"{code}_21_19",
        "position[line_range][start][type]": "new",
        "position[line_range][end][line_code]": f"{code}_19_18",
        "position[line_range][end][type]": "",
        "position[new_line]": "18",
        "position[old_line]": "19",
    }
    bad = requests.post(url, data=reversed_range, headers={"PRIVATE-TOKEN": token}, timeout=5)
    assert (bad.status_code, bad.json()["message"]) == (400, LINE_CODE_400)
    end_mismatch = {**form, "position[new_line]": "18", "position[old_line]": "19"}
    bad = requests.post(url, data=end_mismatch, headers={"PRIVATE-TOKEN": token}, timeout=5)
    assert bad.status_code == 400
    wrong_type = {**form, "position[line_range][end][type]": "old"}
    assert requests.post(url, data=wrong_type, headers={"PRIVATE-TOKEN": token}, timeout=5).status_code == 400


def test_new_file_line_codes_start_at_zero(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    feature_mr(gl)
    mr = client.projects.get(PROJECT).mergerequests.get(1)
    code = sha1("new.py")
    pos = position(mr, "new.py", "new.py", None, 3)
    pos["line_range"] = {
        "start": {"line_code": f"{code}_0_1", "type": "new", "old_line": None, "new_line": 1},
        "end": {"line_code": f"{code}_0_3", "type": "new", "old_line": None, "new_line": 3},
    }
    mr.discussions.create({"body": "whole file", "position": pos})
    pos["line_range"]["start"]["line_code"] = f"{code}_1_1"
    with pytest.raises(gitlab.GitlabCreateError):
        mr.discussions.create({"body": "bad code", "position": pos})


# --- discussions, notes, emoji -------------------------------------------------------------------


def test_resolve_reply_edit_and_notes(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    feature_mr(gl)
    mr = client.projects.get(PROJECT).mergerequests.get(1)
    thread = mr.discussions.create({"body": "general thread"})
    assert thread.attributes["individual_note"] is False
    assert thread.attributes["notes"][0]["type"] == "DiscussionNote"
    thread.resolved = True
    thread.save()
    stored = gl.discussions(PROJECT, 1)[0]["notes"][0]
    assert stored["resolved"] and stored["resolved_by"]["username"] == "bot"
    thread = mr.discussions.get(thread.id)
    thread.resolved = False
    thread.save()
    assert gl.discussions(PROJECT, 1)[0]["notes"][0]["resolved"] is False

    reply = thread.notes.create({"body": "a reply"})
    assert reply.type == "DiscussionNote"
    edited = thread.notes.get(reply.id)
    edited.body = "edited reply"
    edited.save()
    assert gl.discussions(PROJECT, 1)[0]["notes"][1]["body"] == "edited reply"

    plain = mr.notes.create({"body": "plain note"})
    assert plain.type is None and plain.resolvable is False
    discussions = mr.discussions.list(get_all=True)
    individual = [d for d in discussions if d.individual_note]
    assert [d.attributes["notes"][0]["id"] for d in individual] == [plain.id]
    with pytest.raises(gitlab.GitlabUpdateError) as forbidden:
        individual[0].resolved = True
        individual[0].save()
    assert forbidden.value.response_code == 403
    assert {n.body for n in mr.notes.list(get_all=True)} == {"general thread", "edited reply", "plain note"}
    assert len(gl.notes(PROJECT, 1)) == 3

    alice = gitlab.Gitlab(gl.url, private_token=gl.store.user_named("alice").token)
    foreign = alice.projects.get(PROJECT, lazy=True).mergerequests.get(1, lazy=True).notes.get(plain.id)
    foreign.body = "hijack"
    with pytest.raises(gitlab.GitlabUpdateError) as not_author:
        foreign.save()
    assert not_author.value.response_code == 403
    mr.notes.delete(plain.id)
    assert len(gl.notes(PROJECT, 1)) == 2


def test_reply_to_unknown_discussion_is_404(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    feature_mr(gl)
    mr = client.projects.get(PROJECT).mergerequests.get(1)
    ghost = mr.discussions.get("f" * 40, lazy=True)
    with pytest.raises(gitlab.GitlabCreateError) as err:
        ghost.notes.create({"body": "hello?"})
    assert err.value.response_code == 404
    assert json.loads(err.value.response_body) == {"message": "404 Discussion Not Found"}


def test_award_emoji(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    feature_mr(gl)
    mr = client.projects.get(PROJECT).mergerequests.get(1)
    award = mr.awardemojis.create({"name": "eyes"})
    with pytest.raises(gitlab.GitlabCreateError) as dup:
        mr.awardemojis.create({"name": "eyes"})
    assert dup.value.response_code == 404
    assert json.loads(dup.value.response_body)["message"] == (
        "404 Award Emoji Name has already been taken Not Found"
    )
    assert [a.name for a in gl.award_emoji(PROJECT, 1)] == ["eyes"]
    mr.awardemojis.delete(award.id)
    assert gl.award_emoji(PROJECT, 1) == []
    note = mr.notes.create({"body": "n"})
    mr.notes.get(note.id).awardemojis.create({"name": "thumbsup"})
    assert [a.name for a in gl.award_emoji(PROJECT, 1, note.id)] == ["thumbsup"]


# --- faults and bad input ------------------------------------------------------------------------


def test_fault_injection_reaches_python_gitlab(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    gl.fail_next(1, 500, path_contains="/projects/")
    with pytest.raises(gitlab.GitlabGetError) as err:
        client.projects.get(PROJECT)
    assert err.value.response_code == 500
    assert client.projects.get(PROJECT).path_with_namespace == PROJECT

    gl.fail_next(1, 429, retry_after=0)
    with pytest.raises(gitlab.GitlabGetError) as limited:
        client.projects.get(PROJECT, obey_rate_limit=False)
    assert limited.value.response_code == 429

    before = gl.request_count("GET")
    gl.fail_next(2, 429, retry_after=0)
    client.projects.get(PROJECT)  # python-gitlab waits out 429s itself
    assert gl.request_count("GET") - before == 3

    gl.inject_faults(1.0, statuses=(502,), seed=1)
    with pytest.raises(gitlab.GitlabGetError) as injected:
        client.projects.get(PROJECT)
    assert injected.value.response_code == 502
    gl.clear_faults()
    client.projects.get(PROJECT)


def test_a_lost_reply_comes_after_the_effect(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    mr = client.projects.get(PROJECT).mergerequests.get(feature_mr(gl).iid)
    gl.lose_reply_next(1, 502, path_contains="/notes", method="POST")
    with pytest.raises(gitlab.GitlabCreateError) as err:
        mr.notes.create({"body": "once"})
    assert err.value.response_code == 502
    gl.lose_reply_next(1, None, path_contains="/notes", method="POST")  # the connection drops
    with pytest.raises(requests.ConnectionError):
        mr.notes.create({"body": "twice"})
    bodies = [n.body for n in mr.notes.list(get_all=True)]
    assert bodies.count("once") == 1 and bodies.count("twice") == 1  # both took effect

    gl.inject_faults(1.0, statuses=(502,), seed=3, lost_share=1.0)
    for _ in range(6):
        with pytest.raises((gitlab.GitlabCreateError, requests.ConnectionError)):
            mr.notes.create({"body": "random"})
    gl.clear_faults()
    assert [n.body for n in mr.notes.list(get_all=True)].count("random") == 6


def test_stall_makes_client_time_out(gl: GitLabStandIn) -> None:
    impatient = gitlab.Gitlab(gl.url, private_token=gl.store.user_named("bot").token, timeout=0.2)
    gl.stall_next(1, 1.0)
    with pytest.raises(requests.exceptions.Timeout):
        impatient.projects.get(PROJECT)


def test_malformed_requests(gl: GitLabStandIn) -> None:
    feature_mr(gl)
    headers = {"PRIVATE-TOKEN": gl.store.user_named("bot").token, "Content-Type": "application/json"}
    url = f"{gl.url}/api/v4/projects/1/merge_requests/1/discussions"
    bad_json = requests.post(url, data=b"{not json", headers=headers, timeout=5)
    assert bad_json.status_code == 400
    not_object = requests.post(url, data=b"[1]", headers=headers, timeout=5)
    assert not_object.status_code == 400
    huge = requests.post(url, data=b"x" * (11 * 1024 * 1024), headers=headers, timeout=30)
    assert huge.status_code == 413
    unknown = requests.get(f"{gl.url}/api/v4/nothing/here", headers=headers, timeout=5)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "404 Not Found"})
    wrong_type = requests.post(url, json={"body": 42}, headers=headers, timeout=5)
    assert wrong_type.status_code == 400
    missing_body = requests.post(url, json={}, headers=headers, timeout=5)
    assert (missing_body.status_code, missing_body.json()) == (400, {"error": "body is missing"})
    hostile_ref = requests.get(
        f"{gl.url}/api/v4/projects/1/repository/compare?from=--output=/tmp/x&to=main",
        headers=headers,
        timeout=5,
    )
    assert hostile_ref.status_code == 404
    assert gl.discussions(PROJECT, 1) == []


def test_cli_serves_seeded_demo(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.gitlab", "--root", str(tmp_path / "demo"), "--seed", "demo"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        demo = gitlab.Gitlab(info["url"], private_token=info["tokens"]["copilot-agent"])
        [mr] = demo.projects.get("demo/calculator").mergerequests.list(state="opened", get_all=True)
        assert mr.source_branch == "feature/multiply"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_setup_api_rejects_bad_input(gl: GitLabStandIn) -> None:
    with pytest.raises(ValueError):
        gl.create_project("no-namespace", {})
    with pytest.raises(ValueError):
        gl.create_project("grp/../etc", {})
    with pytest.raises(ValueError):
        gl.add_user("bot")
    with pytest.raises(ValueError):
        gl.commit(PROJECT, "bad..name", {"a": "b"}, "m")


def test_quick_actions_of_every_api_write_are_recorded(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    """Notes, discussions, replies, note edits and MR descriptions: what GitLab would run, and who."""
    feature_mr(gl)
    project = client.projects.get(PROJECT)
    mr = project.mergerequests.get(1)
    mr.notes.create({"body": "LGTM\n/approve"})
    discussion = mr.discussions.create({"body": "```\n/close\n```\nno command here"})
    discussion.notes.create({"body": "/label ~x ~y"})
    note = mr.notes.create({"body": "plain"})
    note.body = "edited\n/ready"
    note.save()
    mr.description = "/assign_reviewer @mallory"
    mr.save()
    gl.commit(PROJECT, "other", {"b.py": "x\n"}, "b")
    project.mergerequests.create(
        {"source_branch": "other", "target_branch": "main", "title": "t", "description": ">>>\n/merge\n>>>"}
    )
    assert [(q.where, q.user, q.command, q.argument) for q in gl.quick_actions()] == [
        ("note", "bot", "approve", ""),
        ("reply", "bot", "label", "~x ~y"),
        ("note_edit", "bot", "ready", ""),
        ("mr_description", "bot", "assign_reviewer", "@mallory"),
    ]
    assert gl.quick_actions("alice") == []


def test_protected_branches_api_as_gitlab_serves_it(client: gitlab.Gitlab, gl: GitLabStandIn) -> None:
    from standins.gitlab import AccessEntry

    project = client.projects.get(PROJECT)
    # A new project's default branch is protected, Maintainers push (as in GitLab).
    (default,) = project.protectedbranches.list(get_all=True)
    assert default.name == "main" and default.push_access_levels[0]["access_level"] == 40
    group = gl.add_group("grp/releasers", {"alice": 30})
    alice = gl.store.user_named("alice").id
    gl.protect_branch(
        PROJECT,
        "release/*",
        push=[AccessEntry(0), AccessEntry(user_id=alice), AccessEntry(group_id=group.id)],
    )
    rule = project.protectedbranches.get("release/*")
    levels = rule.push_access_levels
    assert [(e["access_level"], e["user_id"], e["group_id"]) for e in levels] == [
        (0, None, None),
        (40, alice, None),
        (40, None, group.id),
    ]
    assert levels[0]["access_level_description"] == "No one" and rule.allow_force_push is False
    with pytest.raises(gitlab.GitlabGetError) as missing:
        project.protectedbranches.get("release/1.0")  # a branch the rule matches is not a rule
    assert missing.value.response_code == 404
    member = client.groups.get(group.id, lazy=True).members_all.get(alice)
    assert member.access_level == 30
    with pytest.raises(gitlab.GitlabGetError):
        client.groups.get(group.id, lazy=True).members_all.get(gl.store.user_named("bot").id)
    gl.commit(PROJECT, "release/1.0", {"r.txt": "x\n"}, "r")
    branch = project.branches.get("release/1.0")
    assert branch.protected is True and branch.can_push is False  # the bot is a Developer
