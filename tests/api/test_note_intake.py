"""Note Hook intake through a real uvicorn server and a real Temporal dev server (no worker: these
tests look at which MRDiscussion workflows were started and with what input, not at what they do)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from api.app import create_app
from api.identity import AgentUser
from contracts.ids import discussion_id
from core import markers
from devenv.uvicorn_thread import UvicornThread

SECRET = "test-webhook-secret"
AGENT_ID = 99
THREAD = "a" * 40


class FixedIdentity:
    """The agent's identity as the API would have looked it up (None: GitLab unreachable)."""

    def __init__(self, user: AgentUser | None) -> None:
        self.user = user

    async def get(self, project_path: str = "") -> AgentUser | None:
        return self.user


def note_hook(body: str = "@copilot-agent why?", *, note_type: str | None = None, **attrs) -> dict:
    note_id = uuid.uuid4().int % 10**12  # unique per test: the Temporal server is shared
    attributes = {
        "id": note_id,
        "note": body,
        "noteable_type": "MergeRequest",
        "author_id": 11,
        "system": False,
        "type": note_type,
        "discussion_id": THREAD,
    }
    attributes.update(attrs)
    return {
        "object_kind": "note",
        "event_type": "note",
        "user": {"id": attributes["author_id"], "username": "dev"},
        "project": {"id": 7, "path_with_namespace": "group/app"},
        "object_attributes": attributes,
        "merge_request": {"iid": 3, "state": "opened", "source_project_id": 7, "target_project_id": 7},
    }


def serve(settings, user: AgentUser | None = AgentUser(AGENT_ID, "copilot-agent")) -> UvicornThread:
    app = create_app(settings)
    app.state.identity = FixedIdentity(user)
    return UvicornThread(app)


@pytest.fixture
def api(base_settings):
    with serve(base_settings) as server:
        yield server


async def post(server, payload) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Note Hook"}
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        return await http.post("/webhook", content=body, headers=headers)


async def started_input(temporal_client, workflow_id: str) -> dict:
    handle = temporal_client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    assert description.workflow_type == "MRDiscussion"
    history = await handle.fetch_history()
    payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    return json.loads(payload.data)


async def test_mention_starts_one_discussion_with_the_note_id(api, temporal_client):
    hook = note_hook("Could you explain this, @copilot-agent?")
    response = await post(api, hook)
    expected = discussion_id(7, hook["object_attributes"]["id"])
    assert response.status_code == 202 and response.json() == {"status": "queued", "workflow_id": expected}
    assert await started_input(temporal_client, expected) == {
        "project_id": 7,
        "mr_iid": 3,
        "note_id": hook["object_attributes"]["id"],
        "discussion_id": THREAD,
        "trigger": "webhook",
    }
    again = await post(api, hook)  # redelivery
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "workflow_id": expected}


async def test_reply_in_a_thread_without_mention_is_left_to_the_workflow(api):
    # Whether the thread is the agent's needs the discussion: the workflow decides (module docstring).
    for note_type in ("DiscussionNote", "DiffNote"):
        response = await post(api, note_hook("done, please check", note_type=note_type))
        assert response.status_code == 202, response.json()


async def test_malformed_discussion_id_is_not_trusted(api, temporal_client):
    hook = note_hook(discussion_id="../../etc")
    response = await post(api, hook)
    assert response.status_code == 202
    assert (await started_input(temporal_client, response.json()["workflow_id"]))["discussion_id"] is None


@pytest.mark.parametrize(
    ("hook", "reason"),
    [
        (note_hook("thanks @copilot-agent-x"), "note does not mention @copilot-agent"),
        (note_hook("mail me at a@copilot-agent.com"), "note does not mention @copilot-agent"),
        (note_hook("see `@copilot-agent` in the docs"), "note does not mention @copilot-agent"),
        (note_hook("just a comment"), "note does not mention @copilot-agent"),
        (note_hook(author_id=AGENT_ID), "note written by the agent"),
        (
            {**note_hook(author_id=None), "user": {"id": None, "username": "Copilot-Agent"}},
            "note written by the agent",
        ),
        (
            note_hook("answer\n\n" + markers.marker(markers.REPLY, note="5"), note_type="DiscussionNote"),
            "note carries the agent's marker",
        ),
        (note_hook(system=True), "system note"),
        (note_hook(noteable_type="Issue"), "note on Issue, not on a merge request"),
        (note_hook(noteable_type="Commit"), "note on Commit, not on a merge request"),
        (note_hook(noteable_type="Snippet"), "note on Snippet, not on a merge request"),
        (note_hook(noteable_type="<script>"), "note on script, not on a merge request"),
        ({**note_hook(), "merge_request": {"iid": 3, "state": "closed"}}, "merge request is closed"),
        ({**note_hook(), "merge_request": {"iid": 3, "state": "merged"}}, "merge request is merged"),
    ],
)
async def test_notes_that_are_not_for_the_agent_are_ignored(api, temporal_client, hook, reason):
    response = await post(api, hook)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored" and response.json()["reason"].startswith(reason)
    workflow_id = discussion_id(7, hook["object_attributes"]["id"])
    assert [w async for w in temporal_client.list_workflows(f"WorkflowId = '{workflow_id}'")] == []


async def test_project_outside_gitlab_projects_is_ignored(base_settings):
    settings = base_settings.model_copy(update={"gitlab_projects": ["other/project"]})
    with serve(settings) as server:
        response = await post(server, note_hook())
    assert response.json() == {"status": "ignored", "reason": "project 7 is not in GITLAB_PROJECTS"}


async def test_unknown_identity_leaves_possible_mentions_to_the_workflow(base_settings):
    with serve(base_settings, user=None) as server:
        plain = await post(server, note_hook("nothing for a bot"))
        mention = await post(server, note_hook("@copilot-agent hi"))
    assert plain.json()["status"] == "ignored"
    assert mention.status_code == 202


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"object_attributes": None}, "invalid note event: object_attributes"),
        ({"object_attributes": {"note": "x"}}, "invalid note event: object_attributes.id"),
        (
            {"object_attributes": {"id": "seven", "noteable_type": "MergeRequest"}},
            "invalid note event: object_attributes.id",
        ),
        (
            {"object_attributes": {"id": -1, "noteable_type": "MergeRequest"}},
            "invalid note event: object_attributes.id",
        ),
        ({"project": {"id": 0}}, "invalid note event: project.id"),
        ({"merge_request": None}, "invalid note event: merge_request"),
        ({"merge_request": {"iid": "x"}}, "invalid note event: merge_request.iid"),
        (
            {"object_attributes": {"id": 5, "noteable_type": "MergeRequest", "note": ["x"]}},
            "invalid note event: object_attributes.note",
        ),
    ],
)
async def test_malformed_note_payloads_are_400(api, change, reason):
    hook = {**note_hook(), **change}
    if change.get("object_attributes") is None and "object_attributes" in change:
        del hook["object_attributes"]
    if "merge_request" in change and change["merge_request"] is None:
        del hook["merge_request"]
    response = await post(api, hook)
    assert response.status_code == 400, response.json()
    assert response.json()["reason"].startswith(reason)


async def test_huge_note_is_bounded_by_the_body_limit(base_settings):
    settings = base_settings.model_copy(update={"max_webhook_body_bytes": 64 * 1024})
    with serve(settings) as server:
        response = await post(server, note_hook("@copilot-agent " + "x" * 70_000))
    assert response.status_code == 413
