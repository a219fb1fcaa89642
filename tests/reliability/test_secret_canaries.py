"""Secret canaries: every flow runs with a canary value in every secret setting, and none of them may
appear in logs, workflow histories, notes, MR descriptions, commits, Jira comments, or anything the
agent could see (its environment, its home, the clone's git config: checked through what its tool
calls returned to the model).

The API and the worker run as real processes with their logs captured; the agent is scripted to try
hard (`env`, `cat ~/.git-credentials .git/config`, `git config --list`) in the flows that give it a
shell. The Kubernetes executor's Job specs are checked for secret references only in
tests/unit/test_job_spec.py and tests/flows/test_kubernetes_executor.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

import pytest

from contracts.ids import discussion_id, implement_id, review_id
from contracts.implement import ImplementIssueInput
from contracts.settings import REPO_ROOT, Settings
from devenv.stack import AGENT, DEVELOPER
from devenv.temporal_server import free_port
from devenv.worker_process import WorkerProcess, start_api_process
from standins.gitlab import GitLabStandIn
from standins.jira import JiraStandIn
from standins.model_server import ChatRequest, ModelServer, Reply, ToolCall
from tests.flows.helpers import wait_workflow
from tests.flows.implement_support import unique_project_key

PEEK = "env; echo ---; cat ~/.git-credentials; echo ---; cat .git/config; echo ---; git config --list --show-origin"
CANARIES = {
    "GITLAB_TOKEN": "glpat-CANARYgitlab" + uuid.uuid4().hex[:12],
    "GITLAB_WEBHOOK_SECRET": "CANARYwebhook" + uuid.uuid4().hex[:12],
    "GITHUB_TOKEN": "ghp_CANARYgithub" + uuid.uuid4().hex[:16],
    "COPILOT_PROVIDER_API_KEY": "sk-CANARYprovider" + uuid.uuid4().hex[:12],
    "JIRA_API_TOKEN": "CANARYjira" + uuid.uuid4().hex[:12],
    "MARKER_KEY": "CANARYmarker" + uuid.uuid4().hex[:12],
    # A second GitLab credential (GITLAB_TOKEN__TEAM_B, its own user): no project of these flows uses
    # it, but it is in the worker's environment and settings, which the agent's peek and the logs see.
    "GITLAB_TOKEN__TEAM_B": "glpat-CANARYteamb" + uuid.uuid4().hex[:12],
}


class NosyBrain:
    """An agent that looks for credentials wherever it has a shell, then does its job."""

    def __call__(self, request: ChatRequest) -> Reply:
        shell = request.offers("bash")
        if request.offers("reviewer-finish_review"):
            if request.turn == 0:
                return Reply.calls(
                    (
                        "reviewer-report_finding",
                        {
                            "file": "app/calc.py",
                            "line": 10,
                            "severity": "major",
                            "title": "Division by zero",
                            "body": "Guard b.",
                        },
                    ),
                    ("reviewer-finish_review", {"summary": "One bug."}),
                )
            return Reply.text("done")
        if request.offers("discussion-reply"):
            steps = (
                [
                    Reply.call("bash", command=PEEK, description="look around"),
                    Reply.call(
                        "create", path="app/test_calc.py", file_text="def test_div():\n    assert True\n"
                    ),
                    Reply.calls(
                        ("discussion-report_change", {"summary": "Added a test.", "commit_type": "test"}),
                        ("discussion-reply", {"body": "Added a test for div."}),
                    ),
                ]
                if shell
                else [Reply.call("discussion-reply", body="Read-only answer.")]
            )
            return steps[request.turn] if request.turn < len(steps) else Reply.text("done")
        if request.offers("implementer-report_implementation"):
            steps = [
                Reply.call("bash", command=PEEK, description="look around"),
                Reply(
                    tool_calls=(
                        ToolCall(
                            "create", {"path": "mul.py", "file_text": "def mul(a, b):\n    return a * b\n"}
                        ),
                    )
                ),
                Reply.call(
                    "implementer-report_implementation",
                    summary="Added mul.",
                    commit_summary="add mul",
                    test_command="python3 -m unittest",
                ),
            ]
            return steps[request.turn] if request.turn < len(steps) else Reply.text("done")
        return Reply.text("?")


async def test_no_canary_escapes_any_flow(tmp_path, temporal_server, temporal_client, task_queue):
    jira_key_project = unique_project_key()
    with (
        GitLabStandIn(tmp_path / "gitlab") as gitlab,
        JiraStandIn() as jira,
        ModelServer(brain=NosyBrain(), api_key=CANARIES["COPILOT_PROVIDER_API_KEY"]) as model,
    ):
        gitlab.add_user(AGENT, token=CANARIES["GITLAB_TOKEN"])
        gitlab.add_user(DEVELOPER)
        gitlab.add_user("team-b-bot", token=CANARIES["GITLAB_TOKEN__TEAM_B"])
        gitlab.store._ids["note"] = uuid.uuid4().int % 10**12 * 1000  # note IDs unique on the shared server
        files = {
            "app/calc.py": "def add(a, b):\n    return a + b\n",
            "tests/__init__.py": "",
            ".id": uuid.uuid4().hex,
        }
        gitlab.create_project("group/app", files, members={AGENT: 30, DEVELOPER: 30})
        jira.add_account("agent@example.com", CANARIES["JIRA_API_TOKEN"])
        jira.add_project(jira_key_project, "Canary")
        issue = jira.create_issue(jira_key_project, "Add mul", "Add mul(a, b) in mul.py", status="AI Ready")

        settings = Settings(
            _env_file=None,
            temporal_address=temporal_server.address,
            temporal_task_queue=task_queue,
            gitlab_url=gitlab.url,
            gitlab_token=CANARIES["GITLAB_TOKEN"],
            gitlab_tokens={"team_b": CANARIES["GITLAB_TOKEN__TEAM_B"]},
            gitlab_webhook_secret=CANARIES["GITLAB_WEBHOOK_SECRET"],
            marker_key=CANARIES["MARKER_KEY"],
            github_token=CANARIES["GITHUB_TOKEN"],
            copilot_provider_type="openai",
            copilot_provider_base_url=model.base_url,
            copilot_provider_api_key=CANARIES["COPILOT_PROVIDER_API_KEY"],
            copilot_model="scripted",
            copilot_cache_dir=str(REPO_ROOT / ".data" / "copilot-cache"),
            work_dir=str(tmp_path / "work"),
            jira_url=jira.url,
            jira_email="agent@example.com",
            jira_api_token=CANARIES["JIRA_API_TOKEN"],
            jira_project_map={jira_key_project: {"repo": "group/app"}},
            plan_approval="off",  # these flows are about other guardrails
            implement_review_rounds=0,
            log_level="DEBUG",
        )
        port = free_port()
        api_log = open(tmp_path / "api.log", "wb")  # noqa: SIM115
        api = start_api_process(settings, port, log=api_log)
        worker = WorkerProcess(settings, log_file=tmp_path / "worker.log").start()
        try:
            gitlab.set_webhook(f"http://127.0.0.1:{port}/webhook", CANARIES["GITLAB_WEBHOOK_SECRET"])
            gitlab.commit(
                "group/app",
                "feature",
                {"app/calc.py": files["app/calc.py"] + "\n\ndef div(a, b):\n    return a / b\n"},
                "feat: div",
                author=DEVELOPER,
            )
            mr = gitlab.create_mr("group/app", "feature", title="Add div", author=DEVELOPER)
            pid = gitlab.store.project("group/app").id
            head = gitlab.mr_json("group/app", mr.iid)["sha"]
            await wait_workflow(temporal_client, review_id(pid, mr.iid, head), timeout=120)

            note = gitlab.add_note("group/app", mr.iid, DEVELOPER, "@copilot-agent please add a test for div")
            await wait_workflow(temporal_client, discussion_id(pid, note.id), timeout=120)

            await temporal_client.start_workflow(
                "ImplementIssue",
                ImplementIssueInput(issue_key=issue),
                id=implement_id(issue),
                task_queue=task_queue,
            )
            await wait_workflow(temporal_client, implement_id(issue), timeout=120)
            await asyncio.sleep(1)  # let the follow-up review of the pushed commit start and finish
        finally:
            worker.stop()
            api.terminate()
            api.wait()
            api_log.close()

        # What the agent saw: every message (prompts and tool results) the model server received.
        seen_by_agent = json.dumps([r.messages for r in model.requests])
        # The peek ran in both shell flows and returned the environment and the clone's git config.
        assert seen_by_agent.count("PATH=") >= 2 and "[core]" in seen_by_agent
        places = {
            "agent prompts and tool results": seen_by_agent,
            "worker log": (tmp_path / "worker.log").read_text(errors="replace"),
            "api log": (tmp_path / "api.log").read_text(errors="replace"),
            "gitlab notes": json.dumps(
                [gitlab.notes(m.project.path_with_namespace, m.iid) for m in gitlab.store.mrs.values()]
            ),
            "mr descriptions": json.dumps([m.description for m in gitlab.store.mrs.values()]),
            "commits": subprocess.run(
                ["git", "-C", str(gitlab.store.project("group/app").repo.path), "log", "-p", "--all"],
                capture_output=True,
                text=True,
            ).stdout,
            "jira": json.dumps([jira.comments(issue), jira.issue(issue)], default=str),
        }
        histories = []
        async for execution in temporal_client.list_workflows(f"TaskQueue = '{task_queue}'"):
            history = await temporal_client.get_workflow_handle(
                execution.id, run_id=execution.run_id
            ).fetch_history()
            histories.append(history.to_json())
        places["workflow histories"] = "\n".join(histories)

        assert len(histories) >= 4  # review, discussion, implementation, the slots workflow, ...
        assert "Added a test" in places["gitlab notes"] and "Division by zero" in places["gitlab notes"]
        assert "def mul(a, b)" in places["commits"] and "Draft:" in json.dumps(
            [m.title for m in gitlab.store.mrs.values()]
        )
        found = [
            (name, where)
            for name, value in CANARIES.items()
            for where, text in places.items()
            if value in text
        ]
        print(
            f"\nsecret canaries: {len(CANARIES)} planted, {len(places)} places scanned "
            f"({sum(len(t) for t in places.values())} chars, {len(histories)} histories), {len(found)} found"
        )
        assert found == []


@pytest.fixture
def task_queue() -> str:
    return f"canary-{uuid.uuid4().hex[:8]}"
