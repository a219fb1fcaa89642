"""The agent's own merge requests are not reviewed by the webhook or the GitLab poller (seed §8.2 #19:
the seed reviewed them; ImplementIssue reviews its own MR itself, so nothing is reviewed twice)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from devenv.stack import AGENT, WEBHOOK_SECRET
from tests.flows.helpers import head_sha

pytestmark = pytest.mark.flow


@pytest.mark.parametrize("settings_overrides", [{"gitlab_projects": ["group/app"]}])
async def test_the_agents_own_merge_request_is_left_to_implement_issue(stack):
    agent = next(u for u in stack.gitlab.store.users.values() if u.username == AGENT)
    stack.gitlab.commit("group/app", "agent/x-1", {"app/x.py": "X = 1\n"}, "feat: x", author=AGENT)
    mr = stack.gitlab.create_mr("group/app", "agent/x-1", title="X-1 add x", author=AGENT)
    project = stack.gitlab.store.project("group/app")
    hook = {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {"id": agent.id, "username": AGENT},
        "project": {"id": project.id, "path_with_namespace": "group/app"},
        "object_attributes": {
            "iid": mr.iid,
            "action": "open",
            "state": "opened",
            "draft": False,
            "title": "X-1 add x",
            "author_id": agent.id,
            "last_commit": {"id": head_sha(stack, mr.iid)},
        },
    }
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        answer = await http.post(
            "/webhook",
            json=hook,
            headers={"X-Gitlab-Token": WEBHOOK_SECRET, "X-Gitlab-Event": "Merge Request Hook"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "ignored", "reason": "merge request authored by the agent"}

    polled = await stack.client.execute_workflow(
        "PollGitLab", id=f"poll-{uuid.uuid4().hex}", task_queue=stack.settings.temporal_task_queue
    )
    assert polled["started"] == [] and polled["skipped"] >= 1 and polled["errors"] == [], polled
