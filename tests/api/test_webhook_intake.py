"""POST /webhook through a real uvicorn server and a real Temporal dev server (no worker needed:
these tests look at which workflows were started, not at what they do)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from api.app import create_app
from contracts.ids import review_id
from devenv.temporal_server import TemporalDevServer, free_port
from devenv.uvicorn_thread import UvicornThread

SECRET = "test-webhook-secret"


def mr_hook(project_id: int = 7, iid: int = 3, sha: str | None = None, **attrs) -> dict:
    sha = sha or uuid.uuid4().hex[:16] + "0" * 24
    attributes = {
        "iid": iid,
        "action": "open",
        "state": "opened",
        "draft": False,
        "title": "Add thing",
        "author_id": 11,
        "last_commit": {"id": sha},
    }
    attributes.update(attrs)
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {"id": 11, "username": "dev"},
        "project": {"id": project_id, "path_with_namespace": "group/app"},
        "object_attributes": attributes,
    }


@pytest.fixture
def api(base_settings):
    settings = base_settings.model_copy(update={"max_webhook_body_bytes": 64 * 1024})
    with UvicornThread(create_app(settings)) as server:
        yield server, settings


async def post(server, payload, token=SECRET, **kw):
    headers = {"X-Gitlab-Token": token, "X-Gitlab-Event": "Merge Request Hook", **kw.pop("headers", {})}
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return await http.post("/webhook", content=body, headers=headers, **kw)


async def test_open_starts_one_review_with_the_deterministic_id(api, temporal_client):
    server, settings = api
    hook = mr_hook()
    response = await post(server, hook)
    assert response.status_code == 202
    expected = review_id(7, 3, hook["object_attributes"]["last_commit"]["id"])
    assert response.json() == {"status": "queued", "workflow_id": expected}
    description = await temporal_client.get_workflow_handle(expected).describe()
    assert description.workflow_type == "ReviewMR"
    assert description.task_queue == settings.temporal_task_queue


async def test_five_concurrent_deliveries_start_one_workflow(api, temporal_client):
    server, _ = api
    hook = mr_hook(iid=4)
    responses = await asyncio.gather(
        *[
            post(server, hook, headers={"Idempotency-Key": "same-key", "X-Gitlab-Event-UUID": "same-uuid"})
            for _ in range(5)
        ]
    )
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["duplicate"] * 4 + ["queued"]
    workflow_id = responses[0].json()["workflow_id"]
    runs = [w async for w in temporal_client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    assert len(runs) == 1


async def test_redelivery_after_completion_starts_nothing(api, temporal_client):
    server, _ = api
    hook = mr_hook(iid=5)
    first = await post(server, hook)
    handle = temporal_client.get_workflow_handle(first.json()["workflow_id"])
    await handle.terminate("test: pretend it finished")
    again = await post(server, hook)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"action": "update"}, "update without new commits"),
        ({"action": "close", "state": "closed"}, "merge request is closed"),
        ({"action": "merge", "state": "merged"}, "merge request is merged"),
        ({"action": "approved"}, "action 'approved' not handled"),
        ({"draft": True}, "draft merge request"),
        ({"draft": None, "title": "Draft: wip"}, "draft merge request"),
    ],
)
async def test_filtered_mr_events_are_ignored_with_a_reason(api, change, reason):
    server, _ = api
    response = await post(server, mr_hook(**change))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert response.json()["reason"].startswith(reason)


async def test_fork_mrs_are_ignored_when_review_forks_is_off(base_settings):
    settings = base_settings.model_copy(update={"review_forks": False})
    with UvicornThread(create_app(settings)) as server:
        response = await post(server, mr_hook(source_project_id=99, target_project_id=7))
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert response.json()["reason"] == "merge request from a fork (REVIEW_FORKS=false)"


async def test_push_and_draft_turned_ready_are_reviewed(api):
    server, _ = api
    pushed = await post(server, mr_hook(iid=8, action="update", oldrev="a" * 40))
    assert pushed.status_code == 202
    ready = mr_hook(iid=9, action="update")
    ready["changes"] = {"draft": {"previous": True, "current": False}}
    assert (await post(server, ready)).status_code == 202


async def test_project_outside_gitlab_projects_is_ignored(base_settings):
    settings = base_settings.model_copy(update={"gitlab_projects": ["other/project", "99"]})
    with UvicornThread(create_app(settings)) as server:
        response = await post(server, mr_hook(project_id=7))
        allowed = await post(server, mr_hook(project_id=99))
    assert response.json() == {"status": "ignored", "reason": "project 7 is not in GITLAB_PROJECTS"}
    assert allowed.status_code == 202


@pytest.mark.parametrize("token", ["", "wrong", SECRET + "x", SECRET[:-1]])
async def test_wrong_or_missing_token_is_401_and_starts_nothing(api, temporal_client, token):
    server, _ = api
    hook = mr_hook(iid=12)
    headers = {} if token == "" else None
    if headers is not None:
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.post("/webhook", json=hook)
    else:
        response = await post(server, hook, token=token)
    assert response.status_code == 401
    workflow_id = review_id(7, 12, hook["object_attributes"]["last_commit"]["id"])
    assert [w async for w in temporal_client.list_workflows(f"WorkflowId = '{workflow_id}'")] == []


async def test_no_secret_configured_is_403(base_settings):
    settings = base_settings.model_copy(update={"gitlab_webhook_secret": None})
    with UvicornThread(create_app(settings)) as server:
        response = await post(server, mr_hook())
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "body is not valid JSON"),
        (b"\xff\xfe\x00", 400, "body is not valid JSON"),
        (b"[1, 2]", 400, "body must be a JSON object"),
        (b'"text"', 400, "body must be a JSON object"),
        (b"{}", 200, "no object_kind in payload"),
        (b'{"object_kind": "push"}', 200, "unhandled event: push"),
        (b'{"object_kind": "pipeline", "object_attributes": {}}', 200, "unhandled event: pipeline"),
        (b'{"object_kind": 5}', 200, "no object_kind in payload"),
        (b'{"object_kind": "merge_request"}', 400, "invalid merge_request event: project"),
        (
            b'{"object_kind": "merge_request", "project": {"id": "x"}, "object_attributes": {"iid": 1}}',
            400,
            "invalid merge_request event: project.id",
        ),
    ],
)
async def test_malformed_and_unknown_payloads_are_answered(api, body, status, reason):
    server, _ = api
    response = await post(server, body)
    assert response.status_code == status
    assert response.json()["reason"].startswith(reason)


async def test_invalid_head_sha_is_rejected(api):
    server, _ = api
    response = await post(server, mr_hook(sha="not-a-sha; rm -rf /"))
    assert response.status_code == 400


async def test_oversized_body_is_413_by_length_and_when_streamed(api):
    server, settings = api
    big = b'{"object_kind": "merge_request", "pad": "' + b"x" * (settings.max_webhook_body_bytes + 10) + b'"}'
    assert (await post(server, big)).status_code == 413

    async def chunks():
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    async with httpx.AsyncClient(base_url=server.url) as http:
        streamed = await http.post("/webhook", content=chunks(), headers={"X-Gitlab-Token": SECRET})
    assert streamed.status_code == 413


ANSWER_WITHIN_S = 2.0  # GitLab waits 10 s


@pytest.mark.parametrize("how", ["refused", "silent", "went away"])
async def test_temporal_down_answers_503_within_2_s(base_settings, how):
    """Nothing listening, a listener that never answers (a hung proxy or server), and a server that
    stops after the API had connected to it: each a 503 with Retry-After, well inside GitLab's 10 s."""
    with contextlib.ExitStack() as stack:
        if how == "refused":
            address = f"127.0.0.1:{free_port()}"
        elif how == "silent":
            listener = stack.enter_context(socket.create_server(("127.0.0.1", 0), backlog=64))
            address = f"127.0.0.1:{listener.getsockname()[1]}"
        else:
            temporal = stack.enter_context(TemporalDevServer())
            address = temporal.address
        settings = base_settings.model_copy(update={"temporal_address": address})
        server = stack.enter_context(UvicornThread(create_app(settings)))
        if how == "went away":
            assert (await post(server, mr_hook())).status_code == 202  # connected and warm
            temporal.stop()
        for _ in range(2):  # the first delivery and GitLab's redelivery
            began = time.monotonic()
            response = await post(server, mr_hook())
            took = time.monotonic() - began
            assert response.status_code == 503 and response.headers["retry-after"] == "30"
            assert took < ANSWER_WITHIN_S, f"503 after {took:.2f}s ({how})"


def test_a_start_may_take_longer_only_while_temporal_answers():
    """A busy Temporal (it answered lately) gets up to 8 s, inside GitLab's 10 s, so a burst is
    queued rather than shed; one that has not answered lately is cut off after 1.2 s."""
    from api.starter import BUSY_DEADLINE_S, UNREACHABLE_DEADLINE_S, start_deadline, temporal_answered

    class Client:  # only its identity matters here
        pass

    client = Client()
    assert start_deadline(client) == UNREACHABLE_DEADLINE_S
    temporal_answered(client)
    assert start_deadline(client) == BUSY_DEADLINE_S < 10


async def test_a_start_after_a_quiet_spell_waits_longer_once_temporal_answers_another():
    """A burst after a quiet spell: its first wave gets the short deadline (nothing answered lately),
    yet once Temporal answers any other start meanwhile it is busy, not down, and the start waits
    (queued, not shed as a 503); with nothing answering it is still cut off at the short deadline."""
    from api.starter import UNREACHABLE_DEADLINE_S, _within_deadline, temporal_answered

    class Client:  # only its identity matters here
        pass

    async def slow_start(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "started"

    busy = Client()
    began = time.monotonic()

    async def another_start_answers() -> None:
        await asyncio.sleep(0.3)
        temporal_answered(busy)

    helper = asyncio.ensure_future(another_start_answers())
    await _within_deadline(busy, slow_start(UNREACHABLE_DEADLINE_S + 0.8), began, UNREACHABLE_DEADLINE_S)
    await helper
    assert time.monotonic() - began >= UNREACHABLE_DEADLINE_S + 0.8

    silent = Client()
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        await _within_deadline(silent, slow_start(5), began, UNREACHABLE_DEADLINE_S)
    assert time.monotonic() - began < UNREACHABLE_DEADLINE_S + 0.5


async def test_a_start_carries_the_trace_only_when_someone_records_it(monkeypatch, base_settings):
    """The API's client adds the trace header to a start when its spans are exported or the
    delivery came with a traceparent; otherwise the start goes out without the header (nobody
    records that span) and the worker's spans begin their own trace."""
    import dataclasses

    import temporalio.client

    from api import request_telemetry
    from telemetry import tracing

    tracing.setup_tracing(base_settings, "gitlab-copilot-agent-api")  # as create_app does
    seen: list[bool] = []

    class Last(temporalio.client.OutboundInterceptor):
        def __init__(self) -> None:
            pass

        async def start_workflow(self, input):  # noqa: A002
            seen.append("_tracer-data" in input.headers)

    chain = request_telemetry.TracedStartsWhenRecorded().intercept_client(Last())
    given = {
        "workflow": "ReviewMR",
        "args": [],
        "id": "w",
        "task_queue": "q",
        "headers": {},
        "start_signal_args": [],
    }
    start = temporalio.client.StartWorkflowInput(
        **{f.name: given.get(f.name) for f in dataclasses.fields(temporalio.client.StartWorkflowInput)}
    )
    monkeypatch.setattr(tracing, "exporting", lambda: False)
    await chain.start_workflow(start)
    request_telemetry._carried.set(True)  # the delivery came with a traceparent
    await chain.start_workflow(start)
    request_telemetry._carried.set(False)
    monkeypatch.setattr(tracing, "exporting", lambda: True)
    await chain.start_workflow(start)
    assert seen == [False, True, True]


async def test_review_once_per_mr_starts_one_review_whatever_the_pushes(base_settings, temporal_client):
    """GITLAB_REVIEW_ON_PUSH=false (the seed's review-once mode): every head of an MR has the one ID."""
    settings = base_settings.model_copy(update={"gitlab_review_on_push": False})
    project = uuid.uuid4().int % 10**9  # an ID no other test uses on the shared Temporal server
    with UvicornThread(create_app(settings)) as server:
        opened = await post(server, mr_hook(project_id=project, iid=21))
        pushed = await post(server, mr_hook(project_id=project, iid=21, action="update", oldrev="a" * 40))
    assert opened.status_code == 202 and opened.json()["workflow_id"] == f"review:{project}:21:once"
    assert pushed.status_code == 200 and pushed.json()["status"] == "duplicate", pushed.json()
    runs = [w async for w in temporal_client.list_workflows(f"WorkflowId = 'review:{project}:21:once'")]
    assert len(runs) == 1
