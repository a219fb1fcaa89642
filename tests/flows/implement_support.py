"""Fixtures and helpers for the ImplementIssue and polling flow tests: a Jira stand-in with a project
of a unique key (workflow IDs `implement:<KEY>` must not collide on the shared Temporal server), a
GitLab project carrying a tiny `python -m unittest` suite, and the scripted agent turns."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devenv.stack import AGENT, DEVELOPER
from standins.jira import JiraStandIn
from standins.model_server import Reply, ToolCall

JIRA_EMAIL = "agent@example.com"
JIRA_TOKEN = "jira-test-token"
REPO = "group/svc"
SVC_FILES = {
    "README.md": "# Service\n",
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/__init__.py": "",
    "tests/test_calc.py": (
        "import unittest\n\nfrom calc import add\n\n\n"
        "class AddTest(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n"
    ),
}
MUL_TEST = (
    "import unittest\n\nfrom mul import mul\n\n\n"
    "class MulTest(unittest.TestCase):\n    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n"
)
ADF_DESCRIPTION = {
    "type": "doc",
    "version": 1,
    "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Goal"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "Multiply two numbers."}]},
        {
            "type": "bulletList",
            "content": [
                {
                    "type": "listItem",
                    "content": [
                        {
                            "type": "paragraph",
                            "content": [{"type": "text", "text": "add mul(a, b) in mul.py"}],
                        }
                    ],
                }
            ],
        },
        {
            "type": "codeBlock",
            "attrs": {"language": "python"},
            "content": [{"type": "text", "text": "assert mul(2, 3) == 6"}],
        },
    ],
}


# The same description as Jira Server/Data Center stores it (wiki markup; it has no ADF).
WIKI_DESCRIPTION = (
    "h2. Goal\nMultiply two numbers.\n* add mul(a, b) in mul.py\n{code:python}\nassert mul(2, 3) == 6\n{code}"
)


def description_for(jira: JiraStandIn, adf: dict[str, Any], wiki: str) -> Any:
    return adf if jira.cloud else wiki


def unique_project_key() -> str:
    return "P" + "".join(random.choices(string.ascii_uppercase, k=7))


@pytest.fixture(params=["Cloud", "Server"], ids=["jira-cloud", "jira-dc"])
def jira(request) -> Iterator[JiraStandIn]:
    """Every ImplementIssue flow runs on Jira Cloud (v3, ADF) and on Server/Data Center (v2 only,
    wiki markup, no search/jql); the service detects which from serverInfo."""
    with JiraStandIn(deployment_type=request.param) as server:
        server.add_account(JIRA_EMAIL, JIRA_TOKEN, "Copilot Agent")
        yield server


@pytest.fixture
def jira_project(jira) -> str:
    key = unique_project_key()
    jira.add_project(key, "Service")
    return key


def jira_settings(jira: JiraStandIn, project: str, **mapping: Any) -> dict[str, Any]:
    return {
        "jira_url": jira.url,
        "jira_email": JIRA_EMAIL,
        "jira_api_token": JIRA_TOKEN,
        "jira_project_map": {project: {"repo": REPO, "target_branch": "main", **mapping}},
        "plan_approval": "off",  # the plan-approval tests (test_plan_approval.py) switch it on
        "implement_review_rounds": 0,  # and the review-loop tests (test_implement_review_loop.py) this
    }


@pytest.fixture
def svc_repo(gitlab, users) -> str:
    files = {**SVC_FILES, ".test-id": uuid.uuid4().hex}
    gitlab.create_project(REPO, files, members={AGENT: 30, DEVELOPER: 30})
    return REPO


def agent_writes(files: dict[str, str], *, summary: str, subject: str) -> list[Reply]:
    """The scripted agent: create `files` in one turn, then report the implementation."""
    return [
        Reply(tool_calls=tuple(ToolCall("create", {"path": p, "file_text": t}) for p, t in files.items())),
        Reply.call(
            "implementer-report_implementation",
            summary=summary,
            commit_summary=subject,
            test_command="python3 -m unittest",
        ),
        Reply.text("Done."),
    ]


def mrs_of(gitlab, path: str = REPO) -> list[Any]:
    project = gitlab.store.project(path)
    with gitlab.store.lock:
        return [mr for (pid, _), mr in gitlab.store.mrs.items() if pid == project.id]


def file_at(gitlab, branch: str, path: str, project: str = REPO) -> str | None:
    repo = gitlab.store.project(project).repo
    sha = repo.branch_sha(branch)
    data = repo.read_blob(sha, path) if sha else None
    return data.decode() if data is not None else None


def commit_message(gitlab, branch: str, project: str = REPO) -> str:
    repo = gitlab.store.project(project).repo
    return repo.commit_info(repo.branch_sha(branch)).message
