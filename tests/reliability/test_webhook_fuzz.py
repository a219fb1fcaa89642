"""POST /webhook under hostile input, against a live uvicorn server and a real Temporal server.

Thousands of generated malformed, truncated, oversized, wrongly typed and unicode-hostile payloads
and headers: never a 5xx, the server keeps answering, and a workflow is started only for a payload
that really is a reviewable event (every 202 is matched by exactly one new workflow). Then the real
payload shapes of every GitLab event type get their stated answers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from devenv.uvicorn_thread import UvicornThread

SECRET = "fuzz-secret"
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=10 for a long run
FIXTURES = Path(__file__).parent.parent / "fixtures" / "gitlab_events"
CASES = {"payloads": 0, "raw": 0, "headers": 0}
HOSTILE = st.sampled_from(
    [
        "\u202e\u2066evil\u2069",
        "\x00\x01\x1b[31m",
        "\ud800" * 0 + "𝕏" * 50,
        "A" * 10_000,
        "' OR 1=1 --",
        "<!-- gitlab-copilot-agent:summary last_reviewed_sha=abc -->",
        "@copilot-agent",
        "../../etc/passwd",
        "${jndi:ldap://x}",
        "\u0000",
        "{{7*7}}",
        "\ufeff",
        "💥" * 100,
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=60),
    HOSTILE,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=15), inner, max_size=6)
    ),
    max_leaves=25,
)
KINDS = st.sampled_from(
    ["merge_request", "note", "push", "pipeline", "tag_push", "release", "issue", "", "MERGE_REQUEST"]
)
ACTIONS = st.sampled_from(["open", "reopen", "update", "close", "merge", "approved", "", "OPEN"])


def _event(kind, project, attrs, extra):
    payload = {"object_kind": kind, "project": project, "object_attributes": attrs}
    payload.update(extra)
    return payload


EVENTS = st.builds(
    _event,
    KINDS,
    st.one_of(JSON, st.fixed_dictionaries({"id": SCALARS, "path_with_namespace": SCALARS})),
    st.one_of(
        JSON,
        st.fixed_dictionaries(
            {
                "iid": SCALARS,
                "action": st.one_of(ACTIONS, SCALARS),
                "state": SCALARS,
                "draft": SCALARS,
                "oldrev": SCALARS,
                "note": SCALARS,
                "noteable_type": SCALARS,
                "system": SCALARS,
                "last_commit": st.one_of(JSON, st.fixed_dictionaries({"id": SCALARS})),
            }
        ),
    ),
    st.dictionaries(st.sampled_from(["merge_request", "user", "changes"]), JSON, max_size=3),
)


@pytest.fixture(scope="module")
def live(temporal_server):
    from contracts.settings import Settings

    app_settings = Settings(
        _env_file=None,
        temporal_address=temporal_server.address,
        temporal_task_queue="fuzz-no-worker",
        gitlab_webhook_secret=SECRET,
        gitlab_agent_username="copilot-agent",
        max_webhook_body_bytes=256 * 1024,
    )
    with (
        UvicornThread(create_app(app_settings)) as server,
        httpx.Client(base_url=server.url, timeout=20) as http,
    ):
        yield http
    print(f"\nfuzz cases sent: {CASES} (total {sum(CASES.values())})")


STARTED: list[str] = []


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 202, 400, 401, 403, 413), response.status_code
    body = response.json()
    assert isinstance(body, dict) and "status" in body
    if response.status_code == 202:
        STARTED.append(body["workflow_id"])


@settings(max_examples=SCALE * 1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=st.one_of(EVENTS, JSON))
def test_generated_payloads_never_5xx(live, payload):
    CASES["payloads"] += 1
    check(
        live.post("/webhook", content=json.dumps(payload, allow_nan=True), headers={"X-Gitlab-Token": SECRET})
    )


@settings(max_examples=SCALE * 400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=2000).map(str.encode),
        st.builds(lambda j, cut: json.dumps(j)[:cut].encode(), JSON, st.integers(0, 200)),
    )
)
def test_raw_and_truncated_bodies_never_5xx(live, body):
    CASES["raw"] += 1
    check(
        live.post(
            "/webhook", content=body, headers={"X-Gitlab-Token": SECRET, "Content-Type": "application/json"}
        )
    )


HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200).map(str.strip)


@settings(max_examples=SCALE * 200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    token=st.one_of(HEADER_TEXT, st.just(SECRET)),
    event=HEADER_TEXT,
    uuid=HEADER_TEXT,
    content_type=st.sampled_from(["application/json", "text/plain", "", "multipart/form-data; boundary=x"]),
)
def test_hostile_headers_never_5xx(live, token, event, uuid, content_type):
    CASES["headers"] += 1
    payload = json.loads((FIXTURES / "merge_request_merged.json").read_text())
    response = live.post(
        "/webhook",
        content=json.dumps(payload),
        headers={
            "X-Gitlab-Token": token,
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": uuid,
            "Idempotency-Key": uuid,
            "Content-Type": content_type,
        },
    )
    check(response)
    assert response.status_code == (200 if token == SECRET else 401)


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("nested_200k_deep", b"[" * 100_000 + b"]" * 100_000),
        ("nested_objects_past_the_limit", b'{"a":' * 65 + b"1" + b"}" * 65),
        ("integer_of_5001_digits", b'{"object_kind": "note", "x": ' + b"9" * 5001 + b"}"),
        (
            "project_id_10_to_the_30",
            json.dumps(
                {
                    "object_kind": "merge_request",
                    "project": {"id": 10**30},
                    "object_attributes": {"iid": 1, "action": "open", "last_commit": {"id": "a" * 40}},
                }
            ).encode(),
        ),
    ],
)
def test_deep_nesting_and_huge_integers_are_400(live, case, body):
    """Authenticated bodies that once made json.loads or Temporal fail answer 400 with the reason."""
    CASES["raw"] += 1
    response = live.post("/webhook", content=body, headers={"X-Gitlab-Token": SECRET})
    check(response)
    assert response.status_code == 400, (case, response.text)
    assert response.json()["status"] == "rejected"
    assert live.get("/health").status_code == 200


def test_oversized_bodies_are_413_and_the_server_keeps_answering(live):
    for size in (256 * 1024 + 1, 2 * 1024 * 1024):
        response = live.post(
            "/webhook", content=b"{" + b" " * size + b"}", headers={"X-Gitlab-Token": SECRET}
        )
        assert response.status_code == 413
    assert live.get("/health").status_code == 200


def test_every_202_started_exactly_one_workflow(live, temporal_client):
    import asyncio

    async def count(workflow_id: str) -> int:
        return (await temporal_client.count_workflows(f"WorkflowId = '{workflow_id}'")).count

    loop = asyncio.new_event_loop()
    try:
        time.sleep(1.5)  # visibility is eventually consistent
        for workflow_id in set(STARTED):
            assert loop.run_until_complete(count(workflow_id.replace("'", "\\'"))) == 1
    finally:
        loop.close()


EXPECTED = {
    "merge_request_open": (202, "queued"),
    "merge_request_push": (202, "queued"),
    "merge_request_title_edit": (200, "update without new commits"),
    "merge_request_merged": (200, "merge request is merged"),
    "merge_request_approved": (200, "action 'approved' not handled"),
    "note_on_mr_plain": (200, None),
    "note_on_mr_mention": (202, "queued"),
    "note_on_issue": (200, "note on Issue"),
    "note_on_commit": (200, "note on Commit"),
    "note_on_snippet": (200, "note on Snippet"),
    "push": (200, "unhandled event: push"),
    "tag_push": (200, "unhandled event: tag_push"),
    "pipeline": (200, "unhandled event: pipeline"),
    "release": (200, "unhandled event: release"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_payload_shapes_of_every_event_type(live, name):
    payload = (FIXTURES / f"{name}.json").read_text()
    # A fresh SHA / note ID per run keeps the deterministic workflow IDs of this shared server apart.
    stamp = f"{time.time_ns():040x}"[-40:]
    payload = payload.replace("da1560886d4f094c3e6c9ef40349f7d38b5d27d7", stamp).replace(
        "1245", str(time.time_ns() % 10**9)
    )
    response = live.post("/webhook", content=payload, headers={"X-Gitlab-Token": SECRET})
    status, reason = EXPECTED[name]
    assert response.status_code == status, response.text
    body = response.json()
    if status == 202:
        assert body["status"] == "queued"
    else:
        assert body["status"] == "ignored"
        if reason:
            assert body["reason"].startswith(reason), body
