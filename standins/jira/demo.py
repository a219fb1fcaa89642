"""The `--seed demo` data: one agent account and a DEMO project with issues in each interesting state."""

from __future__ import annotations

from typing import Any

from standins.jira.server import JiraStandIn

DEMO_EMAIL = "agent@example.com"
DEMO_TOKEN = "demo-jira-token"  # a stand-in credential, printed by the CLI on purpose
DEMO_PROJECT = "DEMO"


def _doc(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(blocks)}


def _para(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "content": [{"type": "text", "text": text}]}


def _bullets(*items: str) -> dict[str, Any]:
    return {
        "type": "bulletList",
        "content": [{"type": "listItem", "content": [_para(item)]} for item in items],
    }


def seed_demo(standin: JiraStandIn, email: str = DEMO_EMAIL, token: str = DEMO_TOKEN) -> None:
    standin.add_account(email, token, "Copilot Agent")
    standin.add_project(DEMO_PROJECT, "Demo service")
    standin.create_issue(
        DEMO_PROJECT,
        "Add a /health endpoint",
        _doc(
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Goal"}]},
            _para("Operators need a liveness probe that does not touch the database."),
            _bullets('GET /health answers 200 with {"status": "ok"}', "Add a test for it"),
        ),
        status="AI Ready",
    )
    standin.create_issue(
        DEMO_PROJECT,
        "Document the configuration variables",
        "List every environment variable in the README with its default.",
        status="To Do",
    )
    standin.create_issue(DEMO_PROJECT, "Ship version 1.0", None, status="Done", labels=["release"])
