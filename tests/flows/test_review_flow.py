"""ReviewMR end to end: GitLab stand-in webhook → real API → real Temporal → real Copilot CLI
against the scripted model → comments on the stand-in, validated as GitLab validates them."""

from __future__ import annotations

import asyncio

import httpx
from temporalio.client import WorkflowExecutionStatus

from core import markers
from devenv.stack import DEVELOPER, WEBHOOK_SECRET
from tests.flows.helpers import (
    agent_notes,
    finding,
    finish,
    head_sha,
    inline_discussions,
    project_id,
    wait_review,
)

NEW_CALC = (
    "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\n"
    "def div(a, b):\n    return a / b\n"
)


def open_mr(stack, files=None, title="Add div", branch="feature", **kw):
    stack.gitlab.commit(
        "group/app", branch, files or {"app/calc.py": NEW_CALC}, "feat: add div", author=DEVELOPER
    )
    return stack.gitlab.create_mr("group/app", branch, title=title, author=DEVELOPER, **kw)


async def test_opened_mr_gets_inline_findings_with_suggestion_and_one_summary(stack):
    stack.model.brain.brain.when(
        finding(
            "app/calc.py", 10, "Division by zero is not handled", suggestion="    return a / b if b else 0"
        ),
        finding("app/calc.py", 2, "Outside the diff: general note"),
        finish("Adds div; one bug."),
        tool_offered="reviewer-finish_review",
    )
    stack.gitlab.set_webhook(f"{stack.api_url}/webhook", WEBHOOK_SECRET)
    mr = open_mr(stack)
    workflow_id, description = await wait_review(stack, mr.iid)
    assert description.status == WorkflowExecutionStatus.COMPLETED
    result = await stack.client.get_workflow_handle(workflow_id).result()
    assert result["status"] == "posted"

    inline = inline_discussions(stack, mr.iid)
    assert len(inline) == 1
    note = inline[0]["notes"][0]
    assert note["position"]["new_line"] == 10 and note["position"]["new_path"] == "app/calc.py"
    assert note["body"].startswith("**[major]** Division by zero is not handled")
    assert "```suggestion:-0+0\n    return a / b if b else 0\n```" in note["body"]

    general = [
        d
        for d in stack.gitlab.discussions("group/app", mr.iid)
        if d["notes"][0]["body"].startswith("**[") and "Outside the diff" in d["notes"][0]["body"]
    ]  # a finding's thread (the summary's Findings table names it too)
    assert len(general) == 1 and "`app/calc.py:2`" in general[0]["notes"][0]["body"]

    summaries = [n for n in agent_notes(stack, mr.iid) if markers.parse(n["body"], markers.SUMMARY)]
    assert len(summaries) == 1
    assert markers.parse(summaries[0]["body"], markers.SUMMARY) == {
        "last_reviewed_sha": head_sha(stack, mr.iid)
    }
    assert "Adds div; one bug." in summaries[0]["body"]
    assert not stack.gitlab.award_emoji("group/app", mr.iid)  # 👀 removed when done

    prompt = stack.model.requests[0].messages[-1]["content"]
    text = prompt if isinstance(prompt, str) else str(prompt)
    assert "+def div(a, b):" in text and '<untrusted source="mr_title">' in text


async def test_five_concurrent_deliveries_review_once(stack):
    stack.model.brain.brain.when(
        finding("app/calc.py", 10, "Bug"), finish(), tool_offered="reviewer-finish_review"
    )
    mr = open_mr(stack)
    hook = {
        "object_kind": "merge_request",
        "project": {"id": project_id(stack), "path_with_namespace": "group/app"},
        "object_attributes": {
            "iid": mr.iid,
            "action": "open",
            "state": "opened",
            "draft": False,
            "last_commit": {"id": head_sha(stack, mr.iid)},
        },
    }
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        responses = await asyncio.gather(
            *[http.post("/webhook", json=hook, headers={"X-Gitlab-Token": WEBHOOK_SECRET}) for _ in range(5)]
        )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 202], [
        r.json() for r in responses
    ]
    await wait_review(stack, mr.iid)
    assert len(inline_discussions(stack, mr.iid)) == 1
    assert len(stack.model.requests) >= 1
    finishes = [
        r
        for r in stack.model.requests
        if r.tools and "reviewer-finish_review" in r.tools and r.messages[-1].get("role") == "user"
    ]
    assert len(finishes) == 1  # one agent session
