"""The write door: every GitLab and Jira write goes through it, and it never sends a write twice
when its effect can be found.

The static check reads every module that could hold a client (activities, workflows, core,
executors, telemetry, api, worker.py) and fails on a write call outside the two doors; the
runtime guards refuse such a request before it leaves the process.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gitlab
import pytest
import requests

from activities import write_door
from activities.gitlab_api import gitlab_client, write_failed_transiently
from activities.http_errors import TransientHTTPError
from activities.jira_api import jira_client
from activities.write_door import WriteOutsideDoor, outcome_unknown, write_once
from contracts.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOORS = {ROOT / "activities" / "gitlab_writes.py", ROOT / "activities" / "jira_writes.py"}
# python-gitlab's managers and objects write with create/save/delete/update (and http_* below
# them); jira with add_comment/transition_issue/... and raw session calls.
WRITE_CALLS = {
    "create", "save", "delete", "update", "http_post", "http_put", "http_delete", "http_request",
    "add_comment", "transition_issue", "create_issue", "assign_issue", "add_watcher", "remove_watcher",
    "delete_comment", "edit_comment", "add_attachment", "create_issue_link",
    "post", "put", "patch",
}  # fmt: skip
# Calls with those names that are not client writes (a dict's update, OpenTelemetry's Resource).
NOT_CLIENT = {("values", "update"), ("entry", "update"), ("Resource", "create"), ("router", "post")}
GUARD = ("activities/gitlab_api.py", "http_request")  # the guard's own call down to python-gitlab


def _modules() -> list[Path]:
    found = [ROOT / "worker.py"]
    for package in ("activities", "workflows", "core", "executors", "telemetry", "api", "contracts"):
        found += sorted((ROOT / package).rglob("*.py"))
    return [p for p in found if p not in DOORS]


def _writes_in(path: Path) -> list[str]:
    hits = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in WRITE_CALLS
        ):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            where = (str(path.relative_to(ROOT)), node.func.attr)
            if (name, node.func.attr) not in NOT_CLIENT and where != GUARD:
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.func.attr}(")
    return hits


def test_no_write_outside_the_doors():
    hits = [hit for path in _modules() for hit in _writes_in(path)]
    assert not hits, "writes outside activities/gitlab_writes.py / jira_writes.py:\n" + "\n".join(hits)


def test_the_static_check_sees_a_bypass(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "def f(mr, client):\n    mr.notes.create({'body': 'x'})\n    client.add_comment('K-1', 'y')\n"
    )
    sneaky = sneaky.rename(ROOT / "activities" / f"_tmp_{tmp_path.name}.py")
    try:
        assert len(_writes_in(sneaky)) == 2
    finally:
        sneaky.unlink()


def _settings() -> Settings:
    return Settings(
        _env_file=None,
        gitlab_url="http://127.0.0.1:9",
        gitlab_token="t",
        jira_url="http://127.0.0.1:9",
        jira_api_token="t",
        jira_project_map={"K": {"repo": "g/r", "target_branch": "main"}},
        jira_deployment="cloud",  # set, so building the client reads no serverInfo
    )


def test_gitlab_client_refuses_a_write_outside_the_door_before_sending():
    gl = gitlab_client(_settings())  # port 9 (discard): a request that left would fail differently
    with pytest.raises(WriteOutsideDoor, match="POST /projects/1/merge_requests/2/notes"):
        gl.http_post("/projects/1/merge_requests/2/notes", post_data={"body": "x"})
    with pytest.raises(WriteOutsideDoor):
        gl.http_delete("/projects/1/merge_requests/2/award_emoji/3")


@pytest.mark.parametrize(("method", "status", "raises"), [
    ("POST", 429, True), ("PUT", 502, True), ("DELETE", 503, True), ("POST", 400, False), ("GET", 503, False),
])  # fmt: skip
def test_a_failed_gitlab_write_keeps_its_retry_after(method, status, raises):
    response = requests.Response()
    response.status_code, response.url = status, "http://gitlab.example/api/v4/projects/1/notes"
    response.headers["Retry-After"] = "7"
    response.request = requests.Request(method, response.url).prepare()
    if not raises:
        write_failed_transiently(response)  # reads are python-gitlab's to retry; 4xx are certain
        return
    with pytest.raises(TransientHTTPError) as err:
        write_failed_transiently(response)
    assert err.value.retry_after == 7 and outcome_unknown(err.value)


def test_jira_client_refuses_a_write_outside_the_door_before_sending():
    client = jira_client(_settings())
    with pytest.raises(WriteOutsideDoor, match="POST /rest/api/2/issue/K-1/comment"):
        client.add_comment("K-1", "x")


class _Effects:
    """A write that takes effect and then loses its reply `lost` times."""

    def __init__(self, lost: int, error: Exception) -> None:
        self.lost, self.error, self.effects, self.sends, self.finds = lost, error, 0, 0, 0

    def send(self) -> str:
        assert write_door.inside_door()
        self.sends += 1
        self.effects += 1
        if self.lost:
            self.lost -= 1
            raise self.error
        return "sent"

    def find(self) -> str | None:
        assert not write_door.inside_door()
        self.finds += 1
        return "found" if self.effects else None


@pytest.fixture(autouse=True)
def _no_waits(monkeypatch):
    monkeypatch.setattr(write_door, "WAIT_S", 0.0)
    monkeypatch.setattr(write_door.time, "sleep", lambda s: None)


@pytest.mark.parametrize(
    "error",
    [
        gitlab.GitlabCreateError("lost", response_code=502),
        gitlab.GitlabHttpError("lost", response_code=429),
        requests.ConnectionError("reset"),
        requests.ReadTimeout("timeout"),
        TransientHTTPError(503, "/x", None),
    ],
)
def test_a_lost_reply_is_adopted_not_sent_again(error):
    write = _Effects(lost=1, error=error)
    assert write_once("w", write.send, write.find) == "found"
    assert write.sends == 1 and write.effects == 1 and write.finds == 1


def test_a_failure_without_effect_is_sent_again_then_left_to_temporal():
    calls = []

    def send():
        calls.append(1)
        raise gitlab.GitlabCreateError("down", response_code=503)

    with pytest.raises(TransientHTTPError):
        write_once("w", send, lambda: None)
    assert len(calls) == write_door.SEND_ATTEMPTS


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_certain_failures_are_raised_at_once(status):
    calls = []

    def send():
        calls.append(1)
        raise gitlab.GitlabCreateError("no", response_code=status)

    with pytest.raises(gitlab.GitlabCreateError):
        write_once("w", send, lambda: pytest.fail("no need to look"))
    assert len(calls) == 1 and not outcome_unknown(gitlab.GitlabCreateError("no", response_code=status))


def test_a_long_retry_after_is_left_to_temporal_after_looking():
    error = TransientHTTPError(429, "/x", 60)
    with pytest.raises(TransientHTTPError) as err:
        write_once("w", lambda: (_ for _ in ()).throw(error), lambda: None)
    assert err.value.retry_after == 60


def test_check_first_adopts_without_sending():
    assert write_once("w", lambda: pytest.fail("sent"), lambda: "there", check_first=True) == "there"
