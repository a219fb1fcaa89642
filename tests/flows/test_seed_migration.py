# ruff: noqa: F811 - pytest fixtures imported from implement_support are redefined as parameters
"""Issue 15, "Done when": the service started from the seed guide's example `.env.k3d`, with the
seed's rendered `JIRA_PROJECT_MAP` (made from a seed `mappings.yaml` by the helper CLI) naming two
projects, two credentials, plugins and per-project resolution, reviews an MR, answers a mention and
implements a Jira issue, each with the right GitLab credential and identity, and each project's runs
with its own plugins from the map (pre-installed under COPILOT_PLUGIN_ROOT) and no other; the mention is found by
the GitLab poller (webhooks off), and the webhook's identity check is asked directly.

The GitLab stand-in knows two bot users with their own tokens: `copilot-agent` (GITLAB_TOKEN) and
`team-b-bot` (GITLAB_TOKEN__TEAM_B). team-b/svc has only team-b-bot and a developer as members, so a
push or an MR made with the default token would be refused there.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid

import httpx
import pytest
from dotenv import dotenv_values
from temporalio.client import WorkflowExecutionStatus

from activities.plan_approval import PlanActivities
from contracts.ids import discussion_id, implement_id
from contracts.implement import PlanRunInput
from contracts.project_map import main as mapping_helper
from contracts.seed_settings import seed_warning
from contracts.settings import REPO_ROOT, Settings
from devenv.stack import AGENT, DEVELOPER, running_service
from standins.model_server import Reply, ScriptedBrain, message_text
from tests.flows.helpers import finding, finish, wait_review, wait_workflow
from tests.flows.implement_support import (  # noqa: F401 (fixtures)
    JIRA_EMAIL,
    JIRA_TOKEN,
    MUL_TEST,
    SVC_FILES,
    agent_writes,
    jira,
    mrs_of,
    unique_project_key,
)

pytestmark = pytest.mark.flow

# The example `.env.k3d` of the seed's deployment guide (k3d Local Development, step 2), verbatim.
SEED_ENV_K3D = """\
GITLAB_URL=https://gitlab.example.com
GITLAB_TOKEN=glpat-xxxxx
GITLAB_WEBHOOK_SECRET=my-secret
GITHUB_TOKEN=ghp_xxxxx
COPILOT_PROVIDER_TYPE=
COPILOT_PROVIDER_BASE_URL=
COPILOT_PROVIDER_API_KEY=
"""
TEAM_B = "team-b-bot"
SVC = "team-b/svc"
NEW_CALC = "def add(a, b):\n    return a + b\n\n\ndef div(a, b):\n    return a / b\n"


def mappings_yaml(key_a: str, key_b: str) -> str:
    """A seed `mappings.yaml`: defaults, two bindings, one on the second credential."""
    return f"""\
defaults:
  target_branch: main
  credential_ref: default
  plugins: [org/house-rules]
bindings:
  - jira_project: {key_a}
    repo: group/app
  - jira_project: {key_b}
    repo: {SVC}
    credential_ref: team_b
    plugins: [org/house-rules, team-b/linters]
    resolution_behavior: auto-resolve
    model: team-b-model
"""


# The operator's pre-installed plugins (COPILOT_PLUGIN_ROOT), each bringing one skill the model sees.
PLUGINS = {
    "org/house-rules": "HOUSE-RULES-PLUGIN follows the house rules",
    "team-b/linters": "TEAM-B-LINTERS-PLUGIN lints the team-b way",
}


def install_plugins(root) -> None:
    for name, description in PLUGINS.items():
        skill = root / name / "skills" / name.split("/")[1]
        skill.mkdir(parents=True)
        (root / name / "plugin.json").write_text(
            json.dumps({"name": name.replace("/", "-"), "version": "1.0.0", "skills": ["skills/"]})
        )
        (skill / "SKILL.md").write_text(f"---\nname: {skill.name}\ndescription: {description}\n---\nbody\n")


def plugins_offered(model) -> dict[str, set[str]]:
    """Per project (named in the run's prompt), the plugins whose skill was offered to any of its runs."""
    seen: dict[str, set[str]] = {SVC: set(), "group/app": set()}
    for request in model.completions():
        prompt = next((message_text(m) for m in request.messages if m.get("role") == "user"), "")
        project = SVC if SVC in prompt else "group/app" if "group/app" in prompt else None
        if project is None:
            continue
        system = "\n".join(message_text(m) for m in request.messages if m.get("role") == "system")
        seen[project] |= {name for name, text in PLUGINS.items() if text in system}
    return seen


def render_json(path) -> str:
    """The seed's workflow: author mappings.yaml, render JIRA_PROJECT_MAP with the helper CLI."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert mapping_helper(["render-json", str(path)]) == 0
    return json.dumps(json.loads(out.getvalue()))  # one line, as in an env file


@pytest.fixture
def world(gitlab, users, jira, tmp_path):
    team_b = gitlab.add_user(TEAM_B, name="Team B Bot")
    gitlab.create_project(
        SVC, {**SVC_FILES, ".test-id": uuid.uuid4().hex}, members={TEAM_B: 30, DEVELOPER: 30}
    )
    key_a, key_b = unique_project_key(), unique_project_key()
    jira.add_project(key_a, "App")
    jira.add_project(key_b, "Service")
    mapping = tmp_path / "mappings.yaml"
    mapping.write_text(mappings_yaml(key_a, key_b))
    install_plugins(tmp_path / "plugins")
    return {
        "team_b_token": team_b.token,
        "keys": (key_a, key_b),
        "mapping": mapping,
        "plugin_root": str(tmp_path / "plugins"),
    }


@pytest.fixture
async def service(world, gitlab, users, jira, model, brain, temporal_server, task_queue, tmp_path):
    """The service from `.env.k3d`: the guide's example with this machine's URLs and tokens filled
    in, plus the seed variables a team carries over (extra credential, Jira, the rendered map)."""
    values = dotenv_values(stream=io.StringIO(SEED_ENV_K3D))
    values.update(
        GITLAB_URL=gitlab.url,
        GITLAB_TOKEN=users.agent_token,
        COPILOT_PROVIDER_TYPE="openai",
        COPILOT_PROVIDER_BASE_URL=model.base_url,
        COPILOT_PROVIDER_API_KEY="sk-test",
    )
    extra = {
        "GITLAB_TOKEN__TEAM_B": world["team_b_token"],
        "JIRA_URL": jira.url,
        "JIRA_EMAIL": JIRA_EMAIL,
        "JIRA_API_TOKEN": JIRA_TOKEN,
        "JIRA_PROJECT_MAP": render_json(world["mapping"]),
        "AGENT_AUTHOR_NAME": "Team Bot",
        "AGENT_AUTHOR_EMAIL": "bots@example.org",
        "GITLAB_POLL": "true",  # the seed's poller; the test runs its Schedule's workflow by hand
        "GITLAB_PROJECTS": f"group/app,{SVC}",
        "GITLAB_POLL_INTERVAL": "3600",
        "DISPATCH_BACKEND": "local",  # a seed variable that went: named in the start-up warning
    }
    env_file = tmp_path / ".env.k3d"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in {**values, **extra}.items()))
    settings = Settings(
        _env_file=str(env_file),
        # What the seed never had: where Temporal is, and this test's own work directories.
        temporal_address=temporal_server.address,
        temporal_task_queue=task_queue,
        copilot_model="scripted-model",
        copilot_cache_dir=str(REPO_ROOT / ".data" / "copilot-cache"),
        copilot_timeout=120,
        work_dir=str(tmp_path / "work"),
        # The seed installed `plugins` from marketplaces per session; here they are pre-installed.
        copilot_plugin_root=world["plugin_root"],
        # ImplementIssue's newer steps (plan approval in Jira, review rounds) are other tests' subject
        plan_approval="off",
        implement_review_rounds=0,
    )
    brain.brain = ScriptedBrain()
    model.requests.clear()
    async with running_service(settings) as (client, api_url):
        gitlab.set_webhook(f"{api_url}/webhook", "my-secret")
        yield settings, client, dotenv_values(env_file), api_url


def authors(gitlab, path: str, iid: int) -> set[str]:
    return {n["author"]["username"] for n in gitlab.notes(path, iid)} - {DEVELOPER}


@pytest.mark.parametrize("jira", ["Cloud"], indirect=True)  # the seed was Jira Cloud only
async def test_a_seed_configuration_reviews_answers_and_implements_with_each_projects_credential(
    service, world, gitlab, jira, model, tmp_path
):
    settings, client, env, api_url = service
    key_a, key_b = world["keys"]

    # The configuration as the seed wrote it is understood, and the map file form is the same map.
    assert settings.credential_aliases() == ["default", "team_b"]
    assert settings.project_settings(SVC).credential_ref == "team_b"
    assert settings.project_settings(SVC).plugins == ["org/house-rules", "team-b/linters"]
    assert settings.resolution_for(SVC).value == "auto-resolve"
    assert settings.resolution_for("group/app").value == "suggest"  # the seed's default
    from_file = Settings(
        _env_file=None,
        gitlab_tokens={"team_b": "t"},
        jira_project_map_file=str(world["mapping"]),
        copilot_plugin_root=world["plugin_root"],
    )
    assert from_file.project_map() == settings.project_map()
    warning = seed_warning(env)
    assert warning is not None and "DISPATCH_BACKEND: replaced by the Kubernetes Job executor" in warning
    # A plan run (plan approval on) reads and clones team-b/svc with its own credential too.
    planned = jira.create_issue(key_b, "Plan it", "Plan a change.", status="AI Ready")
    plan_task = await asyncio.to_thread(
        PlanActivities(settings, executor=None)._task,  # type: ignore[arg-type]
        PlanRunInput(issue_key=planned, workflow_id="plan-check", run_id="plan-check"),
    )
    assert plan_task.repo.credential == "team_b" and plan_task.project_path == SVC

    # 1. Reviews: each project's notes come from its own bot.
    model.brain.brain.when(
        finding("calc.py", 6, "Division by zero is not handled"),
        finish("Adds div."),
        tool_offered="reviewer-finish_review",
    )
    for path, name in ((SVC, "calc.py"), ("group/app", "app/calc.py")):
        gitlab.commit(path, "feature", {name: NEW_CALC}, "feat: add div", author=DEVELOPER)
    svc_mr = gitlab.create_mr(SVC, "feature", title="Add div", author=DEVELOPER)
    app_mr = gitlab.create_mr("group/app", "feature", title="Add div", author=DEVELOPER)
    for path, mr in ((SVC, svc_mr), ("group/app", app_mr)):
        _, description = await wait_review_of(client, gitlab, path, mr.iid)
        assert description.status == WorkflowExecutionStatus.COMPLETED
    assert authors(gitlab, SVC, svc_mr.iid) == {TEAM_B}
    assert authors(gitlab, "group/app", app_mr.iid) == {AGENT}
    # Each project's runs got its own plugins from the map, and only those.
    assert plugins_offered(model) == {SVC: set(PLUGINS), "group/app": {"org/house-rules"}}

    # 2. With webhooks off, the poller finds a mention of team-b's bot in its project and that bot
    # answers; the other bot's name there is no mention of the agent (poller and webhook alike).
    model.brain.brain.when(
        Reply.call("discussion-reply", body="Division by zero raises ZeroDivisionError."),
        Reply.text("ok"),
        tool_offered="discussion-reply",
    )
    gitlab.set_webhook(None)
    gitlab.store._ids["note"] = uuid.uuid4().int % 10**12 * 1000  # unique discussion IDs on the shared server
    note = gitlab.add_note(SVC, svc_mr.iid, DEVELOPER, f"@{TEAM_B} what happens when b is 0?")
    wrong = gitlab.add_note(SVC, svc_mr.iid, DEVELOPER, f"@{AGENT} and you?")
    project_id = gitlab.store.project(SVC).id
    polled = await client.execute_workflow(
        "PollGitLab", id=f"poll-{uuid.uuid4().hex}", task_queue=settings.temporal_task_queue
    )
    assert polled["answers_started"] == [discussion_id(project_id, note.id)], polled
    description = await wait_workflow(client, discussion_id(project_id, note.id), timeout=90)
    assert description.status == WorkflowExecutionStatus.COMPLETED
    thread = next(
        d for d in gitlab.discussions(SVC, svc_mr.iid) if any(n["id"] == note.id for n in d["notes"])
    )
    replies = [n for n in thread["notes"] if n["id"] != note.id]
    assert [r["author"]["username"] for r in replies] == [TEAM_B]
    assert replies[0]["body"].startswith("Division by zero raises ZeroDivisionError.")
    async with httpx.AsyncClient(base_url=api_url) as http:
        payload = gitlab.note_hook_payload(SVC, svc_mr.iid, wrong.id)
        answer = await http.post("/webhook", json=payload, headers={"X-Gitlab-Token": "my-secret"})
    assert answer.json()["status"] == "ignored" and f"@{TEAM_B}" in answer.json()["reason"]

    # 3. An implementation for team-b's Jira project pushes and opens the MR with team-b's credential,
    # as the configured commit author.
    model.brain.brain.when(
        *agent_writes(
            {"mul.py": "def mul(a, b):\n    return a * b\n", "tests/test_mul.py": MUL_TEST},
            summary="Added `mul` with a unit test.",
            subject="add mul",
        ),
        tool_offered="implementer-report_implementation",
    )
    key = jira.create_issue(key_b, "Add multiplication", "Multiply two numbers.", status="AI Ready")
    await client.start_workflow(
        "ImplementIssue", {"issue_key": key}, id=implement_id(key), task_queue=settings.temporal_task_queue
    )
    description = await wait_workflow(client, implement_id(key), timeout=150)
    assert description.status == WorkflowExecutionStatus.COMPLETED
    result = await client.get_workflow_handle(implement_id(key)).result()
    assert result["status"] == "in_review", result
    (mr,) = [m for m in mrs_of(gitlab, SVC) if m.source_branch == f"agent/{key.lower()}"]
    assert mr.author.username == TEAM_B
    repo = gitlab.store.project(SVC).repo
    commit = repo.commit_info(repo.branch_sha(mr.source_branch))
    assert (commit.author_name, commit.author_email) == ("Team Bot", "bots@example.org")
    # The discussion and the implementation of team-b's project ran with its plugins too.
    assert plugins_offered(model) == {SVC: set(PLUGINS), "group/app": {"org/house-rules"}}
    svc_kinds = {
        kind
        for r in model.completions()
        for kind in ("discussion-reply", "implementer-report_implementation")
        if kind in r.tools and SVC in str(r.messages) and PLUGINS["team-b/linters"] in str(r.messages)
    }
    assert svc_kinds == {"discussion-reply", "implementer-report_implementation"}
    # ... and team-b's model (the map's `model`); the other project keeps COPILOT_MODEL.
    models = {SVC: set(), "group/app": set()}
    for request in model.completions():
        prompt = next((message_text(m) for m in request.messages if m.get("role") == "user"), "")
        models[SVC if SVC in prompt else "group/app"].add(request.model)
    assert models == {SVC: {"team-b-model"}, "group/app": {"scripted-model"}}

    # No token went into any workflow history (only the alias travels).
    for workflow in (implement_id(key), discussion_id(project_id, note.id)):
        history = await client.get_workflow_handle(workflow).fetch_history()
        text = json.dumps(history.to_json_dict())
        assert world["team_b_token"] not in text and settings.gitlab_token.get_secret_value() not in text


async def wait_review_of(client, gitlab, path: str, iid: int):
    class _Stack:  # the two fields wait_review reads
        pass

    stack = _Stack()
    stack.client, stack.gitlab = client, gitlab
    return await wait_review(stack, iid, path=path, timeout=120)
