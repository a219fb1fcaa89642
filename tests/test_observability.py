"""Observability pieces on their own: JSON logs and redaction, metric names and labels, run
summaries, /ready's Schedule states and the Temporal SDK's metrics (real dev server)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from opentelemetry import trace
from prometheus_client import generate_latest
from temporalio import workflow
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleSpec,
    ScheduleState,
    WorkflowFailureError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.app import create_app
from api.starter import run_summary
from contracts import temporal
from contracts.ids import GITLAB_POLL_SCHEDULE_ID
from contracts.settings import REPO_ROOT, Settings
from devenv.temporal_server import free_port
from devenv.uvicorn_thread import UvicornThread
from telemetry import logs, metrics, tracing
from telemetry.temporal_sdk import temporal_runtime
from telemetry.workflow_outcomes import WorkflowOutcomes, outcome_of

CANARY = "canary-gitlab-token-93cf1e"
CANARY_HOOK = "canary-webhook-secret-5d21"


@pytest.fixture
def log_lines():
    """The service's log pipeline writing into a buffer; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    buffer = io.StringIO()
    settings = Settings(
        _env_file=None, gitlab_token=CANARY, gitlab_webhook_secret=CANARY_HOOK, log_level="DEBUG"
    )
    logs.setup_logging(settings, stream=buffer)

    def read() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield read
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_log_lines_handling_a_canary_secret_do_not_contain_it(log_lines):
    log = logging.getLogger("activities.test")
    try:
        raise RuntimeError(f"GitLab answered 401 for token {CANARY}")
    except RuntimeError:
        log.exception("clone of %s failed", f"https://oauth2:{CANARY}@gitlab.example/group/app.git")
    log.warning("webhook token was %s", CANARY_HOOK)
    log.info("headers: Authorization: Bearer sk-live-abcdefgh12345678 PRIVATE-TOKEN: s3cr3tvalue")
    log.info(
        "shapes glpat-AbCdEfGhIjKlMnOpQrSt ghp_0123456789abcdefghijABCDEFGHIJ012345 github_pat_11AB_cdef"
    )
    log.info("token refreshed for user %s", "dev")  # ordinary words stay

    lines = log_lines()
    assert len(lines) == 5
    text = json.dumps(lines)
    for leaked in (CANARY, CANARY_HOOK, "sk-live-abcdefgh12345678", "s3cr3tvalue", "glpat-AbCd", "ghp_0123"):
        assert leaked not in text
    assert "github_pat_11AB_cdef" in text  # too short to be a real token: left alone
    assert lines[0]["message"] == "clone of https://[REDACTED]@gitlab.example/group/app.git failed"
    assert "GitLab answered 401 for token [REDACTED]" in lines[0]["exception"]
    assert lines[2]["message"] == "headers: Authorization: Bearer [REDACTED] PRIVATE-TOKEN: [REDACTED]"
    assert lines[4]["message"] == "token refreshed for user dev"
    assert {"time", "level", "logger", "message"} <= set(lines[1]) and lines[1]["level"] == "WARNING"


def test_log_lines_carry_the_current_trace_and_survive_bad_format_arguments(log_lines):
    tracing.setup_tracing(Settings(_env_file=None), "gitlab-copilot-agent-test")
    log = logging.getLogger("api.test")
    with tracing.tracer.start_as_current_span("request") as span:
        log.info("inside a span")
        log.info("too few arguments %s %s", "one")  # must not raise at the call site
    context = span.get_span_context()
    inside, bad = log_lines()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "arguments did not match" in bad["message"]
    assert trace.get_current_span().get_span_context().is_valid is False


def test_at_debug_the_client_libraries_stay_at_their_own_level(log_lines):
    # log_lines set LOG_LEVEL=DEBUG; LOG_LEVEL_LIBRARIES keeps its default, WARNING
    logging.getLogger("service.test").debug("the service's own detail")
    logging.getLogger("urllib3.connectionpool").debug('http://gitlab:80 "GET /api/v4/user HTTP/1.1" 200')
    logging.getLogger("kubernetes.client.rest").debug("response body: ...")
    logging.getLogger("urllib3.connectionpool").warning("Retrying after connection broken")
    assert [(e["logger"], e["level"]) for e in log_lines()] == [
        ("service.test", "DEBUG"),
        ("urllib3.connectionpool", "WARNING"),
    ]
    louder = Settings(_env_file=None, log_level="DEBUG", log_level_libraries="DEBUG")
    logs.setup_logging(louder, stream=io.StringIO())
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.DEBUG


def scrape() -> str:
    return generate_latest().decode()


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_delivery_results_are_a_fixed_set_whatever_the_answer_body_holds():
    metrics.setup_metrics(Settings(_env_file=None), "gitlab-copilot-agent-test")
    before = scrape()
    metrics.record_delivery(b'{"status": "queued", "workflow_id": "x"}')
    metrics.record_delivery(b'{"status": "attacker-chosen-' + b"x" * 500 + b'"}')
    metrics.record_delivery(b"not json at all")
    metrics.record_delivery(b"[1, 2]")
    metrics.record_delivery(b'{"status": ["queued"]}')
    after = scrape()
    name = "copilot_webhook_deliveries_total"
    assert value(after, name, result="queued") - value(before, name, result="queued") == 1
    assert value(after, name, result="other") - value(before, name, result="other") == 4
    assert "attacker-chosen" not in after


def test_outcome_of_flow_results():
    class Result:
        status = "posted"

    assert outcome_of(Result()) == "posted"
    assert outcome_of({"status": "replied"}) == "replied"
    assert outcome_of(None) == "completed"
    assert outcome_of({"status": "x" * 100}) == "x" * 40


def test_run_summary_is_built_from_search_attributes_only():
    attrs = TypedSearchAttributes(
        [
            SearchAttributePair(temporal.GITLAB_PROJECT, "7"),
            SearchAttributePair(temporal.MERGE_REQUEST_IID, 42),
            SearchAttributePair(temporal.HEAD_SHA, "1a2b3c4d5e6f7a8b9c0d"),
            SearchAttributePair(temporal.TRIGGER_SOURCE, "webhook"),
        ]
    )
    summary, details = run_summary("ReviewMR", "review:7:42:1a2b3c4d5e6f7a8b9c0d", attrs)
    assert summary == "ReviewMR · project 7 · MR !42 · head 1a2b3c4d · via webhook"
    assert "| MergeRequestIID | `42` |" in details
    assert (
        "temporal workflow query --workflow-id 'review:7:42:1a2b3c4d5e6f7a8b9c0d' --type progress" in details
    )


async def test_ready_reports_whether_each_enabled_schedule_exists_and_is_paused(
    base_settings, temporal_client, task_queue
):
    settings = base_settings.model_copy(update={"gitlab_poll": True, "gitlab_projects": ["group/app"]})
    handle = temporal_client.get_schedule_handle(GITLAB_POLL_SCHEDULE_ID)
    # The Schedule ID is fixed by the service, and the dev server is shared by the session: keep
    # whatever another test left, and put it back as it was.
    try:
        previous = await handle.describe()
    except Exception:  # noqa: BLE001 - absent
        previous = None
    if previous is not None:
        await handle.delete()
    with UvicornThread(create_app(settings, temporal_client=temporal_client)) as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=15) as http:
            missing = (await http.get("/ready")).json()
            await temporal_client.create_schedule(
                GITLAB_POLL_SCHEDULE_ID,
                Schedule(
                    action=ScheduleActionStartWorkflow(
                        "PollGitLab", id="poll-gitlab-run", task_queue=task_queue
                    ),
                    spec=ScheduleSpec(),
                    state=ScheduleState(paused=True, note="test"),
                ),
            )
            try:
                paused = (await http.get("/ready")).json()
                await handle.unpause()
                running = (await http.get("/ready")).json()
            finally:
                await handle.delete()
    if previous is not None:
        await temporal_client.create_schedule(GITLAB_POLL_SCHEDULE_ID, previous.schedule)
    assert missing["status"] == "ok"
    assert missing["schedules"] == {GITLAB_POLL_SCHEDULE_ID: {"exists": False, "paused": None}}
    assert paused["schedules"] == {GITLAB_POLL_SCHEDULE_ID: {"exists": True, "paused": True}}
    assert running["schedules"] == {GITLAB_POLL_SCHEDULE_ID: {"exists": True, "paused": False}}


async def test_ready_lists_no_schedule_when_no_poller_is_enabled(base_settings, temporal_client):
    with UvicornThread(create_app(base_settings, temporal_client=temporal_client)) as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=15) as http:
            body = (await http.get("/ready")).json()
    assert body == {"status": "ok", "temporal": "ok", "schedules": {}}


async def test_temporal_sdk_metrics_reach_the_prometheus_endpoint(temporal_server):
    settings = Settings(_env_file=None, temporal_address=temporal_server.address)
    metrics.setup_metrics(settings, "gitlab-copilot-agent-test")
    client = await temporal.connect(settings, runtime=temporal_runtime())
    # The runtime is process-wide (other tests may have used it): wait for this very request.
    before = value(scrape(), "temporal_request_total", operation="CountWorkflowExecutions")
    await client.count_workflows(f"WorkflowId = '{uuid.uuid4().hex}'")
    deadline = time.monotonic() + 15
    while value(scrape(), "temporal_request_total", operation="CountWorkflowExecutions") <= before:
        assert time.monotonic() < deadline, "no temporal_ metrics drained from the SDK"
        await asyncio.sleep(0.5)


def test_a_collector_that_is_down_costs_only_the_telemetry():
    """With OTLP pointed at a closed port the process still works and exits promptly (own process:
    the tracer and meter providers are process-wide)."""
    script = f"""
import time
from opentelemetry import metrics as otel_metrics, trace
from contracts.settings import Settings
import telemetry
from telemetry import metrics, tracing
telemetry.setup(Settings(_env_file=None, otel_exporter_otlp_endpoint="http://127.0.0.1:{free_port()}"), "api")
with tracing.tracer.start_as_current_span("work"):
    metrics.reviews.add(1, {{"outcome": "posted"}})
started = time.monotonic()
trace.get_tracer_provider().shutdown()
otel_metrics.get_meter_provider().shutdown()
print("done in", round(time.monotonic() - started, 1))
"""
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "done in" in out.stdout
    assert time.monotonic() - started < 30


@workflow.defn(name="MRDiscussion")
class ScriptedDiscussion:
    """Stands in for the real MRDiscussion on a task queue of its own: ends as told."""

    @workflow.run
    async def run(self, how: str) -> dict:
        if how == "fail":
            raise ApplicationError("told to fail", non_retryable=True)
        if how == "wait":
            await workflow.wait_condition(lambda: False)
        return {"status": how}


async def test_flow_outcomes_are_counted_once_by_result_status_failure_and_cancellation(
    temporal_client, task_queue
):
    metrics.setup_metrics(Settings(_env_file=None), "gitlab-copilot-agent-test")
    before = scrape()
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[ScriptedDiscussion],
        interceptors=[WorkflowOutcomes()],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=0,  # every task replays from the start: replays must not count again
    ):

        def run(how: str):
            workflow_id = f"outcome-{how}-{uuid.uuid4().hex[:8]}"
            return temporal_client.start_workflow("MRDiscussion", how, id=workflow_id, task_queue=task_queue)

        await (await run("replied")).result()
        with pytest.raises(WorkflowFailureError):
            await (await run("fail")).result()
        waiting = await run("wait")
        await asyncio.sleep(0.5)
        await waiting.cancel()
        with pytest.raises(WorkflowFailureError):
            await waiting.result()
    after = scrape()
    for outcome in ("replied", "failed", "cancelled"):
        grown = value(after, "copilot_discussions_total", outcome=outcome)
        assert grown - value(before, "copilot_discussions_total", outcome=outcome) == 1, outcome
        count = "copilot_discussion_duration_seconds_count"
        assert value(after, count, outcome=outcome) - value(before, count, outcome=outcome) == 1


@workflow.defn(name="PollGitLab")
class ScriptedPoll:
    """Stands in for the real PollGitLab under the `poll-gitlab` Schedule: completes or fails as told."""

    @workflow.run
    async def run(self, how: str) -> dict:
        if how == "fail":
            raise ApplicationError("GitLab unreachable", non_retryable=True)
        return {"watermark": "2026-12-01T10:00:00+00:00", "started": []}


async def test_health_carries_the_seeds_gitlab_poller_block_from_the_schedule(
    base_settings, temporal_client, task_queue
):
    from temporalio.client import ScheduleUpdate

    settings = base_settings.model_copy(update={"gitlab_poll": True, "gitlab_projects": ["group/app"]})
    handle = temporal_client.get_schedule_handle(GITLAB_POLL_SCHEDULE_ID)
    try:  # the Schedule ID is fixed and the dev server shared: put back what another test left
        previous = await handle.describe()
        await handle.delete()
    except Exception:  # noqa: BLE001 - absent
        previous = None

    def action(how: str) -> ScheduleActionStartWorkflow:
        return ScheduleActionStartWorkflow(
            "PollGitLab", how, id=f"poll-{uuid.uuid4().hex}", task_queue=task_queue
        )

    async def run_once(how: str) -> None:
        await handle.update(
            lambda _: ScheduleUpdate(schedule=Schedule(action=action(how), spec=ScheduleSpec()))
        )
        before = len((await handle.describe()).info.recent_actions)
        await handle.trigger()
        for _ in range(100):
            actions = (await handle.describe()).info.recent_actions
            if len(actions) > before:
                started = actions[-1].action
                try:
                    await temporal_client.get_workflow_handle(started.workflow_id).result()
                except WorkflowFailureError:
                    pass
                return
            await asyncio.sleep(0.1)
        raise TimeoutError("the Schedule did not start the poll")

    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[ScriptedPoll],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        with UvicornThread(create_app(settings, temporal_client=temporal_client)) as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=15) as http:
                absent = (await http.get("/health")).json()
                await temporal_client.create_schedule(
                    GITLAB_POLL_SCHEDULE_ID, Schedule(action=action("ok"), spec=ScheduleSpec())
                )
                try:
                    await run_once("ok")
                    healthy = (await http.get("/health")).json()
                    await run_once("fail")
                    await run_once("fail")
                    failing = (await http.get("/health")).json()
                    await handle.pause(note="test")
                    paused = (await http.get("/health")).json()
                finally:
                    await handle.delete()
    if previous is not None:
        await temporal_client.create_schedule(GITLAB_POLL_SCHEDULE_ID, previous.schedule)
    assert absent == {"status": "ok", "gitlab_poller": {"running": False, "failures": 0, "watermark": None}}
    mark = "2026-12-01T10:00:00+00:00"
    assert healthy["gitlab_poller"] == {"running": True, "failures": 0, "watermark": mark}
    assert failing["gitlab_poller"] == {"running": True, "failures": 2, "watermark": mark}
    assert paused["status"] == "ok" and paused["gitlab_poller"]["running"] is False
