"""Starting a workflow from a webhook: one call, and a definite HTTP answer for every outcome.

Started → 202; already started or completed under the same ID → 200 "duplicate" (the workflow ID
is the dedup, so redeliveries and duplicate hooks do nothing twice); Temporal unreachable → 503 so
GitLab redelivers with backoff, within 2 s whatever the network does (a server that accepts
connections and never answers included).

How long a start may take depends on whether Temporal is alive: when it answered within the last
`RECENT_S` (a start or the API's keep-warm health check), a slow start is a busy server, and waits
up to `BUSY_DEADLINE_S` (still inside GitLab's 10 s, so a burst is queued, not shed); otherwise it
is treated as unreachable and cut off after `UNREACHABLE_DEADLINE_S`, unless Temporal answered
another request meanwhile: then it is busy after all and the start waits up to `BUSY_DEADLINE_S`
too. (A burst arriving after a quiet spell got the short deadline for its first wave: 130 of 1,000
deliveries answered 503 in bench/bench_webhook_intake.py while Temporal was serving 80 starts/s.)
A start cut off by a deadline may still land: the redelivery then finds it and answers "duplicate".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from datetime import timedelta
from typing import Any

from fastapi.responses import JSONResponse
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)

UNREACHABLE_DEADLINE_S = 1.2  # measured 503s: 0.02-1.26 s (tests/api, bench_webhook_unavailable.py)
BUSY_DEADLINE_S = 8.0
RECENT_S = 3.0
# CANCELLED is what the SDK reports when a call's own timeout expires ("Timeout expired").
_UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
}
_answered_at: weakref.WeakKeyDictionary[Client, float] = weakref.WeakKeyDictionary()


def temporal_answered(client: Client) -> None:
    """Temporal answered this client just now (a start, a health check)."""
    _answered_at[client] = time.monotonic()


def start_deadline(client: Client) -> float:
    alive = time.monotonic() - _answered_at.get(client, float("-inf")) < RECENT_S
    return BUSY_DEADLINE_S if alive else UNREACHABLE_DEADLINE_S


async def start_workflow(
    client: Client,
    workflow: str,
    arg: Any,
    *,
    workflow_id: str,
    task_queue: str,
    search_attributes: TypedSearchAttributes,
    reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
) -> JSONResponse:
    summary, details = run_summary(workflow, workflow_id, search_attributes)
    if client.data_converter.payload_codec is None:
        # Without payload encryption the texts are encoded here: the SDK's way (the converter chain,
        # then the codec step) was about a tenth of the API's CPU per delivery (bench/profile_intake.py).
        summary, details = _text_payload(summary), _text_payload(details)  # type: ignore[assignment]
    began = time.monotonic()
    deadline = start_deadline(client)
    try:
        start = client.start_workflow(
            workflow,
            arg,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=reuse_policy,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=search_attributes,
            static_summary=summary,
            static_details=details,
            rpc_timeout=timedelta(seconds=BUSY_DEADLINE_S),
        )
        await _within_deadline(client, start, began, deadline)
    except WorkflowAlreadyStartedError:
        temporal_answered(client)
        return JSONResponse({"status": "duplicate", "workflow_id": workflow_id}, status_code=200)
    except RPCError as exc:
        if exc.status in _UNAVAILABLE:
            log.warning("temporal unavailable, asking GitLab to redeliver: %s", exc.status.name)
            return JSONResponse(
                {"status": "unavailable", "reason": "workflow service unavailable, retry later"},
                status_code=503,
                headers={"Retry-After": "30"},
            )
        raise
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        # A lazy client that never reached the server raises here rather than an RPCError; a
        # server that does not answer in time is as good as unreachable to GitLab.
        log.warning("temporal unreachable: %s", type(exc).__name__)
        return JSONResponse(
            {"status": "unavailable", "reason": "workflow service unreachable, retry later"},
            status_code=503,
            headers={"Retry-After": "30"},
        )
    temporal_answered(client)
    return JSONResponse({"status": "queued", "workflow_id": workflow_id}, status_code=202)


async def _within_deadline(client: Client, start: Any, began: float, deadline: float) -> None:
    """Await the start within `deadline`, extended to BUSY_DEADLINE_S when Temporal answered another
    request since this one began (it is alive, only busy); TimeoutError when it is cut off. The
    deadline is ours: the SDK's rpc_timeout does not cover connecting."""
    task = asyncio.ensure_future(start)
    done, _ = await asyncio.wait({task}, timeout=deadline + 0.1)
    if not done and _answered_at.get(client, float("-inf")) > began:
        done, _ = await asyncio.wait({task}, timeout=began + BUSY_DEADLINE_S + 0.1 - time.monotonic())
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise TimeoutError
    task.result()


_LABELS = {
    "GitLabProject": "project {}",
    "MergeRequestIID": "MR !{}",
    "JiraIssueKey": "{}",
    "HeadSHA": "head {:.8}",
    "TriggerSource": "via {}",
}


def run_summary(workflow: str, workflow_id: str, search_attributes: TypedSearchAttributes) -> tuple[str, str]:
    """The one-line summary and the details the Web UI shows for a run, from its search attributes
    (which never hold secrets), e.g. "ReviewMR · project 7 · MR !42 · head 1a2b3c4d · via webhook"."""
    values = {pair.key.name: pair.value for pair in search_attributes}
    parts = [template.format(values[name]) for name, template in _LABELS.items() if name in values]
    summary = " · ".join([workflow, *parts])
    rows = "\n".join(f"| {name} | `{values[name]}` |" for name in _LABELS if name in values)
    details = (
        f"**{workflow}** `{workflow_id}`\n\n| Search attribute | Value |\n|---|---|\n{rows}\n\n"
        f"Progress: `temporal workflow query --workflow-id '{workflow_id}' --type progress`"
    )
    return summary, details


def _text_payload(text: str) -> Payload:
    """A str as the data converter writes it (JSON), for a run's summary and details."""
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text, ensure_ascii=False).encode())


def ignored(reason: str) -> JSONResponse:
    return JSONResponse({"status": "ignored", "reason": reason}, status_code=200)
