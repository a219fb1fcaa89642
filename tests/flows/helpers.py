"""Small helpers shared by the flow tests."""

from __future__ import annotations

import asyncio
import time

from temporalio.client import Client, WorkflowExecutionStatus

from contracts.ids import review_id
from devenv.stack import Stack
from standins.model_server import Reply


def finding(
    file: str, line: int, title: str, *, severity: str = "major", body: str = "Explain.", **extra
) -> Reply:
    return Reply.call(
        "reviewer-report_finding", file=file, line=line, severity=severity, title=title, body=body, **extra
    )


def finish(summary: str = "Looks mostly fine.") -> Reply:
    return Reply.call("reviewer-finish_review", summary=summary)


def project_id(stack: Stack, path: str = "group/app") -> int:
    return stack.gitlab.store.project(path).id


def head_sha(stack: Stack, iid: int, path: str = "group/app") -> str:
    return stack.gitlab.mr_json(path, iid)["sha"]


async def wait_workflow(client: Client, workflow_id: str, timeout: float = 90.0):
    """Wait until the workflow exists and has finished; returns its description."""
    deadline = time.monotonic() + timeout
    handle = client.get_workflow_handle(workflow_id)
    while True:
        try:
            description = await handle.describe()
            if description.status != WorkflowExecutionStatus.RUNNING:
                return description
        except Exception:  # noqa: BLE001 - not started yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"workflow {workflow_id} did not finish in {timeout}s")
        await asyncio.sleep(0.2)


async def wait_review(
    stack: Stack, iid: int, sha: str | None = None, path: str = "group/app", timeout: float = 90.0
):
    sha = sha or head_sha(stack, iid, path)
    workflow_id = review_id(project_id(stack, path), iid, sha)
    description = await wait_workflow(stack.client, workflow_id, timeout)
    return workflow_id, description


def inline_discussions(stack: Stack, iid: int, path: str = "group/app") -> list[dict]:
    return [d for d in stack.gitlab.discussions(path, iid) if d["notes"][0].get("type") == "DiffNote"]


def agent_notes(stack: Stack, iid: int, path: str = "group/app") -> list[dict]:
    return [n for n in stack.gitlab.notes(path, iid) if n["author"]["username"] == "copilot-agent"]
