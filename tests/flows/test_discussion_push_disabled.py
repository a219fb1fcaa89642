"""DISCUSSION_PUSH=false: a Developer's change request gets a read-only run and an explanation."""

from __future__ import annotations

import pytest

from standins.model_server import ChatRequest, Reply
from tests.flows.test_discussion_flow import (
    REQUEST_TOOL,
    WRITE_TOOLS,
    agent_replies,
    ask,
    discussion_requests,
    mr,
    script,
    thread_of,
)

__all__ = ["mr"]  # the fixture, imported for pytest


@pytest.fixture
def settings_overrides():
    return {"discussion_push": False}


async def test_push_disabled_means_explain_and_never_push(stack, mr):  # noqa: F811
    def explain(request: ChatRequest) -> Reply:
        assert "DISCUSSION_PUSH=false" in request.prompt
        return Reply.call(REQUEST_TOOL, body="Pushing is switched off here; I would add a guard for b == 0.")

    script(stack, explain, Reply.text("ok"))
    before = stack.gitlab.branch_sha("group/app", "feature")
    note, result = await ask(stack, mr, "dev", "@copilot-agent please guard div against zero")
    assert result["status"] == "replied" and result["push"] == "none"
    assert stack.gitlab.branch_sha("group/app", "feature") == before
    assert not WRITE_TOOLS & set(discussion_requests(stack)[0].tools)
    assert "switched off" in agent_replies(thread_of(stack, mr, note.id))[0]["body"]
