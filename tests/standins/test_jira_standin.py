"""The Jira stand-in, driven through the real `jira` client library (and its HTTP session for raw bodies)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from jira import JIRA, JIRAError

from standins.jira import JiraStandIn, Transition

EMAIL, TOKEN = "agent@example.com", "secret-token"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _adf(text: str) -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


@pytest.fixture
def server() -> Iterator[JiraStandIn]:
    with JiraStandIn(max_results_cap=3) as standin:
        standin.add_account(EMAIL, TOKEN, "Agent")
        standin.add_project("PROJ", "Project")
        standin.add_project("OPS", "Operations")
        yield standin


def _client(server: JiraStandIn, version: str = "2", **auth: object) -> JIRA:
    auth = auth or {"basic_auth": (EMAIL, TOKEN)}
    return JIRA(server=server.url, options={"rest_api_version": version}, max_retries=0, **auth)  # type: ignore[arg-type]


# --- server info and authentication -------------------------------------------------------------------


def test_constructor_reads_server_info_and_detects_cloud(server: JiraStandIn) -> None:
    client = _client(server)
    assert client.deploymentType == "Cloud"
    assert client.server_info()["baseUrl"] == server.url
    assert client.myself()["emailAddress"] == EMAIL
    assert server.requests[0].path == "/rest/api/2/serverInfo"


def test_server_deployment_is_reported_as_server() -> None:
    with JiraStandIn(deployment_type="Server") as standin:
        standin.add_account(EMAIL, TOKEN)
        assert _client(standin).deploymentType == "Server"


def test_bearer_token_auth_is_accepted(server: JiraStandIn) -> None:
    assert _client(server, token_auth=TOKEN).myself()["emailAddress"] == EMAIL


@pytest.mark.parametrize(
    "auth",
    [
        {"basic_auth": (EMAIL, "wrong")},
        {"basic_auth": ("someone@example.com", TOKEN)},
        {"token_auth": "wrong"},
    ],
)
def test_wrong_credentials_get_401_in_jira_shape(server: JiraStandIn, auth: dict) -> None:
    with pytest.raises(JIRAError) as raised:
        _client(server, **auth)
    assert raised.value.status_code == 401
    assert raised.value.response.json() == {
        "errorMessages": ["Client must be authenticated to access this resource."],
        "errors": {},
    }


def test_anonymous_client_sees_server_info_but_nothing_else(server: JiraStandIn) -> None:
    client = JIRA(server=server.url, max_retries=0)
    assert client.server_info()["deploymentType"] == "Cloud"
    with pytest.raises(JIRAError) as raised:
        client.myself()
    assert raised.value.status_code == 401


# --- search --------------------------------------------------------------------------------------------


def test_cloud_search_follows_next_page_tokens_over_several_pages(server: JiraStandIn) -> None:
    keys = [server.create_issue("PROJ", f"Issue {n}", status="AI Ready") for n in range(8)]
    server.create_issue("PROJ", "Not ready")
    client = _client(server)

    found = client.search_issues(
        'project = PROJ AND status = "AI Ready" ORDER BY created ASC', maxResults=False
    )

    assert [issue.key for issue in found] == keys
    pages = [r for r in server.requests if r.path == "/rest/api/2/search/jql"]
    assert len(pages) == 3  # a cap of 3 per page: 3 + 3 + 2
    assert "nextPageToken" not in pages[0].query and "nextPageToken" in pages[1].query
    assert found[0].fields.status.name == "AI Ready"


def test_cloud_search_returns_one_capped_page_when_asked_for_one(server: JiraStandIn) -> None:
    for n in range(5):
        server.create_issue("PROJ", f"Issue {n}")
    page = _client(server).search_issues("project = PROJ ORDER BY key ASC", maxResults=10)
    assert [issue.key for issue in page] == ["PROJ-1", "PROJ-2", "PROJ-3"]


def test_server_search_pages_with_start_at() -> None:
    with JiraStandIn(deployment_type="Server", max_results_cap=2) as standin:
        standin.add_account(EMAIL, TOKEN)
        standin.add_project("P", "P")
        keys = [standin.create_issue("P", f"Issue {n}") for n in range(5)]
        found = _client(standin).search_issues("project = P ORDER BY created ASC", maxResults=False)
        assert [issue.key for issue in found] == keys
        starts = [r.query.get("startAt") for r in standin.requests if r.path == "/rest/api/2/search"]
        assert starts == [["0"], ["2"], ["4"]]


def test_enhanced_search_rejects_a_bad_page_token_and_unbounded_jql(server: JiraStandIn) -> None:
    client = _client(server)
    with pytest.raises(JIRAError) as raised:
        client.enhanced_search_issues("project = PROJ", nextPageToken="not-a-token")
    assert raised.value.status_code == 400
    with pytest.raises(JIRAError) as raised:
        client.enhanced_search_issues("ORDER BY created DESC")
    assert "Unbounded JQL" in raised.value.text


@pytest.fixture(scope="module")
def catalogue() -> Iterator[JiraStandIn]:
    """Issues with fixed timestamps: PROJ-1..4 and OPS-1..2."""
    with JiraStandIn(clock=lambda: NOW) as standin:
        standin.add_account(EMAIL, TOKEN)
        standin.add_project("PROJ", "Project")
        standin.add_project("OPS", "Operations")
        day = timedelta(days=1)
        for summary, project, status, labels, age in [
            ("Fix login", "PROJ", "AI Ready", [], 4),
            ("Add metrics", "PROJ", "AI Ready", ["ai-failed"], 3),
            ("Write docs", "PROJ", "To Do", ["docs", "later"], 2),
            ("Rotate keys", "OPS", "AI Ready", ["security"], 1),
            ("Old task", "OPS", "Done", [], 10),
            ("Ship it", "PROJ", "In Review", [], 0),
        ]:
            moment = NOW - age * day
            standin.create_issue(
                project, summary, status=status, labels=labels, created=moment, updated=moment
            )
        yield standin


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            'project in (PROJ, OPS) AND status = "AI Ready" ORDER BY created ASC',
            ["PROJ-1", "PROJ-2", "OPS-1"],
        ),
        ("project = PROJ ORDER BY created ASC", ["PROJ-1", "PROJ-2", "PROJ-3", "PROJ-4"]),
        ("project = 'Operations' ORDER BY created ASC", ["OPS-2", "OPS-1"]),
        ('status in ("To Do", "In Review") ORDER BY updated DESC', ["PROJ-4", "PROJ-3"]),
        # != and NOT skip issues without labels, exactly as Jira does.
        ('labels != "ai-failed" ORDER BY created ASC', ["PROJ-3", "OPS-1"]),
        ("NOT labels = ai-failed ORDER BY created ASC", ["PROJ-3", "OPS-1"]),
        ("labels is EMPTY ORDER BY created ASC", ["OPS-2", "PROJ-1", "PROJ-4"]),
        (
            "(labels is EMPTY OR labels != ai-failed) AND status = 'AI Ready' ORDER BY key ASC",
            ["OPS-1", "PROJ-1"],
        ),
        ("labels not in (docs, security) ORDER BY created ASC", ["PROJ-2"]),
        ('updated >= "2026-02-26 12:00" ORDER BY updated ASC', ["PROJ-2", "PROJ-3", "OPS-1", "PROJ-4"]),
        ("updated < 2026-02-26 ORDER BY created DESC", ["PROJ-1", "OPS-2"]),
        ("created >= -2d AND project = PROJ ORDER BY created ASC", ["PROJ-3", "PROJ-4"]),
        ("statusCategory = Done", ["OPS-2"]),
        ('summary ~ "docs"', ["PROJ-3"]),
        ("key in (PROJ-2, OPS-1) ORDER BY key DESC", ["PROJ-2", "OPS-1"]),
        ("project = PROJ AND NOT (status = 'AI Ready' OR status = 'To Do')", ["PROJ-4"]),
    ],
)
def test_jql_subset_matches_like_jira(catalogue: JiraStandIn, query: str, expected: list[str]) -> None:
    found = _client(catalogue).search_issues(query, maxResults=False)
    assert [issue.key for issue in found] == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("priority = High", "Field 'priority' does not exist"),
        ('status = "Nope"', "The value 'Nope' does not exist for the field 'status'."),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("status = AI Ready", "expecting AND, OR or ORDER BY"),
        ('status = "AI Ready', "unexpected character"),
        ("assignee = currentUser()", "Field 'assignee' does not exist"),
        ("updated >= now()", "The function 'now' is not supported"),
        ("updated >= yesterday", "Date value 'yesterday'"),
        ("project in (PROJ", "ended unexpectedly"),
        ("labels > x", "The operator '>' is not supported by the 'labels' field."),
        ("project = PROJ ORDER BY votes", "does not support sorting"),
    ],
)
def test_unsupported_or_wrong_jql_is_a_400_in_jira_shape(
    catalogue: JiraStandIn, query: str, message: str
) -> None:
    with pytest.raises(JIRAError) as raised:
        _client(catalogue).search_issues(query)
    assert raised.value.status_code == 400
    body = raised.value.response.json()
    assert body["errors"] == {} and message in body["errorMessages"][0]


# --- issues, transitions, comments ---------------------------------------------------------------------


def test_issue_fields_in_v2_text_and_v3_adf(server: JiraStandIn) -> None:
    key = server.create_issue(
        "PROJ", "Add health check", _adf("Return 200 on /health"), status="AI Ready", labels=["api"]
    )

    v2 = _client(server).issue(key)
    assert v2.fields.description == "Return 200 on /health"
    assert (v2.fields.summary, v2.fields.labels, v2.fields.project.key) == (
        "Add health check",
        ["api"],
        "PROJ",
    )
    assert v2.fields.status.statusCategory.key == "new"

    v3 = _client(server, version="3").issue(key)
    assert v3.raw["fields"]["description"] == _adf("Return 200 on /health")
    text_key = server.create_issue("PROJ", "Plain", "line one\nline two")
    assert _client(server, version="3").issue(text_key).raw["fields"]["description"]["content"][0]["content"][
        1
    ] == {"type": "hardBreak"}


def test_transition_is_chosen_by_target_status_not_by_name(server: JiraStandIn) -> None:
    key = server.create_issue("PROJ", "Work", status="AI Ready")
    client = _client(server)

    by_target = {t["to"]["name"]: t for t in client.transitions(key)}
    assert by_target["In Progress"]["name"] == "Start work"
    assert "AI Ready" not in by_target  # no transition to the status the issue is in
    client.transition_issue(key, by_target["In Progress"]["id"])

    assert server.issue(key).status == "In Progress"
    record = server.transition_log[-1]
    assert (record.from_status, record.to_status, record.transition_name, record.by) == (
        "AI Ready",
        "In Progress",
        "Start work",
        EMAIL,
    )


def test_unknown_or_unavailable_transition_is_400_and_changes_nothing(server: JiraStandIn) -> None:
    server.add_workflow(
        ["Open", "Doing", "Closed"],
        [Transition("7", "Begin", "Doing", ("Open",)), Transition("8", "Finish", "Closed", ("Doing",))],
        project="OPS",
    )
    key = server.create_issue("OPS", "Strict workflow")
    client = _client(server)
    assert [t["name"] for t in client.transitions(key)] == ["Begin"]
    for bad in ("8", "999"):
        with pytest.raises(JIRAError) as raised:
            client.transition_issue(key, bad)
        assert raised.value.status_code == 400
        assert raised.value.response.json()["errorMessages"] == [
            f"Transition id '{bad}' is not valid for this issue."
        ]
    with pytest.raises(JIRAError) as raised:
        client.transition_issue(key, "7", fields={"resolution": {"name": "Done"}})
    assert "not on the appropriate screen" in raised.value.text
    assert server.issue(key).status == "Open" and server.transition_log == []


def test_human_moves_show_up_in_searches_and_the_log(server: JiraStandIn) -> None:
    key = server.create_issue("PROJ", "Human picks it")
    server.set_status(key, "AI Ready")
    assert [i.key for i in _client(server).search_issues('status = "AI Ready"')] == [key]
    assert server.transition_log[-1].by == "human"


def test_transition_with_comment_adds_both(server: JiraStandIn) -> None:
    key = server.create_issue("PROJ", "Work", status="In Progress")
    _client(server).transition_issue(key, "41", comment="MR opened: !7")
    assert server.issue(key).status == "In Review"
    assert [c.body for c in server.comments(key)] == ["MR opened: !7"]


def test_comments_v2_string_and_v3_adf(server: JiraStandIn) -> None:
    key = server.create_issue("PROJ", "Talk")
    v2 = _client(server)
    created = v2.add_comment(key, "Started working on this.")
    assert created.body == "Started working on this." and created.author.emailAddress == EMAIL

    adf_body = _adf("Draft MR is open.")
    v3 = _client(server, version="3")
    v3._session.post(f"{server.url}/rest/api/3/issue/{key}/comment", data=json.dumps({"body": adf_body}))

    assert [c.body for c in v2.comments(key)] == ["Started working on this.", "Draft MR is open."]
    assert [c.raw["body"] for c in v3.comments(key)][1] == adf_body
    assert [c.body for c in server.comments(key)] == ["Started working on this.", adf_body]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", "Comment body can not be empty!"),
        ("x" * 32_768, "The entered text is too long. It exceeds the allowed limit of 32,767 characters."),
    ],
)
def test_bad_comments_are_rejected_like_jira(server: JiraStandIn, body: str, error: str) -> None:
    key = server.create_issue("PROJ", "Talk")
    with pytest.raises(JIRAError) as raised:
        _client(server).add_comment(key, body)
    assert raised.value.status_code == 400
    assert raised.value.response.json() == {"errorMessages": [], "errors": {"comment": error}}
    assert server.comments(key) == []


def test_v3_comment_must_be_adf(server: JiraStandIn) -> None:
    key = server.create_issue("PROJ", "Talk")
    with pytest.raises(JIRAError) as raised:
        _client(server, version="3").add_comment(key, "plain text")
    assert "Atlassian Document" in raised.value.response.json()["errors"]["comment"]


def test_labels_are_updated_and_spaces_rejected(server: JiraStandIn) -> None:
    key = server.create_issue("PROJ", "Label me", labels=["one"])
    client = _client(server)
    issue = client.issue(key)
    issue.update(fields={"labels": ["one", "ai-working"]})
    issue.update(update={"labels": [{"remove": "one"}, {"add": "ai-done"}]})
    assert server.issue(key).labels == ["ai-working", "ai-done"]
    with pytest.raises(JIRAError) as raised:
        issue.update(fields={"labels": ["has space"]})
    assert raised.value.response.json()["errors"] == {
        "labels": "The label 'has space' contains spaces which is invalid."
    }
    with pytest.raises(JIRAError) as raised:
        issue.update(fields={"priority": {"name": "High"}})
    assert "not on the appropriate screen" in raised.value.text
    assert server.issue(key).labels == ["ai-working", "ai-done"]


def test_remote_links_upsert_by_global_id(server: JiraStandIn) -> None:
    key = server.create_issue("PROJ", "Link me")
    client = _client(server)
    client.add_remote_link(key, {"url": "http://gitlab/mr/1", "title": "MR !1"}, globalId="mr-1")
    client.add_remote_link(key, {"url": "http://gitlab/mr/1", "title": "Draft: MR !1"}, globalId="mr-1")
    links = client.remote_links(key)
    assert [(link.globalId, link.object.title) for link in links] == [("mr-1", "Draft: MR !1")]


@pytest.mark.parametrize(
    "call",
    [
        lambda client: client.issue("PROJ-999"),
        lambda client: client.transitions("PROJ-999"),
        lambda client: client.comments("PROJ-999"),
        lambda client: client.add_comment("NOPE-1", "hi"),
    ],
)
def test_unknown_issue_is_404_in_jira_shape(server: JiraStandIn, call) -> None:
    with pytest.raises(JIRAError) as raised:
        call(_client(server))
    assert raised.value.status_code == 404
    assert raised.value.response.json() == {
        "errorMessages": ["Issue does not exist or you do not have permission to see it."],
        "errors": {},
    }


# --- malformed requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "data", "status"),
    [
        ("post", "/rest/api/2/issue/PROJ-1/comment", "{not json", 400),
        ("post", "/rest/api/2/issue/PROJ-1/comment", b"\xff\xfe", 400),
        ("post", "/rest/api/2/issue/PROJ-1/comment", "[1, 2]", 400),
        ("post", "/rest/api/2/issue/PROJ-1/transitions", "{}", 400),
        ("post", "/rest/api/2/issue/PROJ-1/transitions", '{"transition": {"id": true}}', 400),
        ("put", "/rest/api/2/issue/PROJ-1", '{"update": {"labels": "add"}}', 400),
        ("post", "/rest/api/2/search", '{"jql": 5}', 400),
        ("get", "/rest/api/2/search?maxResults=lots", None, 400),
        ("post", "/rest/api/2/issue/PROJ-1/comment", "x" * (1 << 20 + 1), 413),
        ("delete", "/rest/api/2/issue/PROJ-1", None, 405),
        ("get", "/rest/api/2/nothing/here", None, 404),
        ("get", "/elsewhere", None, 404),
    ],
)
def test_malformed_requests_get_jira_errors_and_change_nothing(
    server: JiraStandIn, method: str, path: str, data: object, status: int
) -> None:
    key = server.create_issue("PROJ", "Target")
    before = server.issue(key)
    session = _client(server)._session
    with pytest.raises(JIRAError) as raised:
        getattr(session, method)(server.url + path, data=data)
    assert raised.value.status_code == status
    assert set(raised.value.response.json()) == {"errorMessages", "errors"}
    assert server.issue(key) == before
    assert _client(server).myself()["emailAddress"] == EMAIL  # the server still answers


# --- fault injection -----------------------------------------------------------------------------------


def test_fail_next_fails_exactly_n_requests_before_any_effect(server: JiraStandIn) -> None:
    key = server.create_issue("PROJ", "Flaky")
    client = _client(server)
    server.fail_next(2, 500, method="POST", path_contains="/comment")
    for _ in range(2):
        with pytest.raises(JIRAError) as raised:
            client.add_comment(key, "hello")
        assert raised.value.status_code == 500
    assert client.issue(key).key == key  # GETs were never matched
    client.add_comment(key, "hello")
    assert [c.body for c in server.comments(key)] == ["hello"]


def test_a_lost_reply_comes_after_the_effect(server: JiraStandIn) -> None:
    key = server.create_issue("PROJ", "Flaky")
    client = _client(server)
    server.lose_next(1, 503, method="POST", path_contains="/comment")
    with pytest.raises(JIRAError) as raised:
        client.add_comment(key, "once")
    assert raised.value.status_code == 503
    server.lose_next(1, None, method="POST", path_contains="/comment")
    with pytest.raises(requests.ConnectionError):
        client.add_comment(key, "twice")
    assert [c.body for c in server.comments(key)] == ["once", "twice"]


def test_fail_next_sends_retry_after_and_the_client_retries(server: JiraStandIn) -> None:
    client = JIRA(server=server.url, basic_auth=(EMAIL, TOKEN), max_retries=1)
    server.fail_next(1, 429, retry_after=0)
    assert client.myself()["emailAddress"] == EMAIL
    statuses = [r.status for r in server.requests if r.path.endswith("/myself")]
    assert statuses == [429, 200]


def test_random_faults_are_reproducible_and_clearable(server: JiraStandIn) -> None:
    client = _client(server)

    def outcomes() -> list[int]:
        server.inject_faults(0.4, statuses=(502, 503), seed=7)
        seen = []
        for _ in range(30):
            try:
                client.myself()
                seen.append(200)
            except JIRAError as error:
                seen.append(error.status_code)
        return seen

    first, second = outcomes(), outcomes()
    assert first == second
    assert {502, 503, 200} <= set(first)
    server.clear_faults()
    assert all(client.myself() for _ in range(10))


def test_concurrent_clients_lose_no_writes(server: JiraStandIn) -> None:
    key = server.create_issue("PROJ", "Busy")

    def comment(n: int) -> str:
        return _client(server).add_comment(key, f"comment {n}").id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(comment, range(24)))
    assert len(set(ids)) == 24
    assert sorted(c.body for c in server.comments(key)) == sorted(f"comment {n}" for n in range(24))


# --- Python API and CLI --------------------------------------------------------------------------------


def test_python_api_rejects_bad_setup(server: JiraStandIn) -> None:
    with pytest.raises(ValueError, match="unknown project"):
        server.create_issue("NOPE", "x")
    with pytest.raises(ValueError, match="not in the workflow"):
        server.create_issue("PROJ", "x", status="Limbo")
    with pytest.raises(ValueError, match="unknown statuses"):
        server.add_workflow(["A", "B"], [("Go", "C")])
    with pytest.raises(ValueError, match="project key"):
        server.add_project("lower", "x")
    with pytest.raises(ValueError, match="fail_next"):
        server.fail_next(0, 500)


def test_cli_serves_the_demo_seed() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "standins.jira", "--port", "0", "--seed", "demo"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        client = JIRA(server=url, basic_auth=("agent@example.com", "demo-jira-token"), max_retries=0)
        ready = client.search_issues('project = DEMO AND status = "AI Ready"')
        assert [issue.fields.summary for issue in ready] == ["Add a /health endpoint"]
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


# --- Server / Data Center mode ------------------------------------------------------------------------


def test_data_center_mode_serves_v2_only_wiki_bodies_and_named_users() -> None:
    with JiraStandIn(deployment_type="Server") as standin:
        standin.add_account(EMAIL, TOKEN, "Agent")
        standin.add_project("P", "P")
        with pytest.raises(ValueError, match="wiki markup"):
            standin.create_issue("P", "Rich", _adf("x"))
        key = standin.create_issue("P", "Plain", "h2. Goal\n* one")
        client = _client(standin, token_auth=TOKEN)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        assert session.get(f"{standin.url}/rest/api/3/issue/{key}").status_code == 404
        assert (
            session.get(f"{standin.url}/rest/api/2/search/jql", params={"jql": "project = P"}).status_code
            == 404
        )
        issue = session.get(f"{standin.url}/rest/api/2/issue/{key}").json()
        assert issue["fields"]["description"] == "h2. Goal\n* one"
        me = client.myself()
        assert "accountId" not in me and me["name"] and me["key"] == me["name"]
        refused = session.post(f"{standin.url}/rest/api/2/issue/{key}/comment", json={"body": _adf("x")})
        assert refused.status_code == 400  # an ADF body on v2


@pytest.mark.parametrize("deployment", ["Cloud", "Server"])
def test_project_roles_and_groups_name_their_members(deployment: str) -> None:
    with JiraStandIn(deployment_type=deployment) as standin:  # type: ignore[arg-type]
        standin.add_account(EMAIL, TOKEN, "Agent")
        standin.add_account("lead@example.com", "t2", "Lead")
        standin.add_project("P", "P")
        standin.add_role_member("P", "Developers", "lead@example.com")
        standin.add_group_member("release-leads", "lead@example.com")
        client = _client(standin)
        roles = client.project_roles("P")
        assert set(roles) == {"Administrators", "Developers", "Users"}
        actors = client._get_json(f"project/P/role/{roles['Developers']['id']}")["actors"]
        who = actors[0]["actorUser"]
        assert (who.get("accountId") or who.get("name")) and len(actors) == 1
        assert [u["fullname"] for u in client.group_members("release-leads").values()] == ["Lead"]
        with pytest.raises(JIRAError) as missing:
            client.group_members("nobody")
        assert missing.value.status_code == 404
