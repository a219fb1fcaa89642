"""One MR review observed end to end: a single trace from the webhook through the workflow and its
activities to the agent run (whose traceparent the executor hands to the Copilot CLI), the metrics
endpoint after the review, log lines with trace and workflow IDs and no secrets, and the run found
by its search attributes, with a readable summary, through the client and the `temporal` CLI."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import telemetry
from activities import build_activities
from activities.review import ReviewActivities
from api.app import create_app
from contracts import VERSION, temporal
from contracts.ids import review_id
from devenv.stack import DEVELOPER, WEBHOOK_SECRET, stack_settings
from devenv.temporal_server import free_port, temporal_cli
from devenv.uvicorn_thread import UvicornThread
from executors.base import make_executor
from executors.tasks import AgentResult, AgentTask
from standins.model_server import ScriptedBrain
from telemetry import logs, metrics, tracing
from tests.flows.helpers import finding, finish, wait_workflow
from tests.test_observability import value
from worker import build_worker

NEW_CALC = (
    "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\n"
    "def div(a, b):\n    return a / b\n"
)


class RecordingExecutor:
    """The real executor, plus a note of the traceparent each run was handed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.traceparents: list[str | None] = []

    async def run(self, task: AgentTask, *, run_id: str, traceparent: str | None = None) -> AgentResult:
        self.traceparents.append(traceparent)
        return await self.inner.run(task, run_id=run_id, traceparent=traceparent)


@dataclass
class Observed:
    settings: object
    client: object
    api_url: str
    executor: RecordingExecutor
    spans: InMemorySpanExporter
    log: io.StringIO


@pytest.fixture
async def observed(
    temporal_server, task_queue, gitlab, users, model, brain, tmp_path
) -> AsyncIterator[Observed]:
    brain.brain = ScriptedBrain()
    model.requests.clear()
    settings = stack_settings(
        temporal_address=temporal_server.address,
        task_queue=task_queue,
        gitlab=gitlab,
        agent_token=users.agent_token,
        model=model,
        work=tmp_path / "work",
        metrics_port=free_port(),
        log_level="DEBUG",
    )
    spans = InMemorySpanExporter()
    tracing.setup_tracing(settings, "gitlab-copilot-agent-test").add_span_processor(
        SimpleSpanProcessor(spans)
    )
    client = await temporal.connect(settings)
    executor = RecordingExecutor(make_executor(settings))
    review = ReviewActivities(settings, executor)
    activities = [
        getattr(review, a.__name__) if isinstance(getattr(a, "__self__", None), ReviewActivities) else a
        for a in build_activities(settings)
    ]
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    app = create_app(settings, temporal_client=client)
    # What worker.py's telemetry.setup(settings, "worker") adds: GitLab/Jira HTTP client spans.
    telemetry.instrument_http_clients(
        tracing.setup_tracing(settings, "gitlab-copilot-agent-test"), metrics.setup_metrics(settings, "test")
    )
    log = io.StringIO()
    logs.setup_logging(settings, stream=log)  # after create_app, whose set-up it replaces
    try:
        with UvicornThread(app) as api:
            async with build_worker(client, settings, activities=activities):
                yield Observed(settings, client, api.url, executor, spans, log)
    finally:
        spans.shutdown()  # the provider is process-wide; stop collecting for later tests
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


async def scrape(settings) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await http.get(f"http://127.0.0.1:{settings.metrics_port}/metrics")).text


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name}: {[s.name for s in spans]}"
    return found[0]


def parent_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return span.parent is not None and span.parent.span_id == parent.context.span_id


async def test_one_review_is_one_trace_with_metrics_logs_and_searchable_run(observed, gitlab, brain):
    brain.brain.when(
        finding("app/calc.py", 10, "Division by zero is not handled"),
        finding("app/calc.py", 2, "Outside the diff: general note"),
        finish("Adds div; one bug."),
        tool_offered="reviewer-finish_review",
    )
    before = await scrape(observed.settings)
    gitlab.set_webhook(f"{observed.api_url}/webhook", WEBHOOK_SECRET)
    gitlab.commit("group/app", "feature", {"app/calc.py": NEW_CALC}, "feat: add div", author=DEVELOPER)
    mr = gitlab.create_mr("group/app", "feature", title="Add div", author=DEVELOPER)
    project = gitlab.store.project("group/app").id
    sha = gitlab.mr_json("group/app", mr.iid)["sha"]
    workflow_id = review_id(project, mr.iid, sha)
    await wait_workflow(observed.client, workflow_id)
    result = await observed.client.get_workflow_handle(workflow_id).result()
    assert (
        result["status"] == "posted" and result["posted"]["inline"] == 1 and result["posted"]["fallback"] == 1
    )

    # --- one trace: webhook → StartWorkflow → RunWorkflow → activities → agent run ----------------
    finished = observed.spans.get_finished_spans()
    start = one(finished, "StartWorkflow:ReviewMR")
    webhook = next(s for s in finished if s.context.span_id == start.parent.span_id)
    assert webhook.name == "POST /webhook" and webhook.parent is None
    spans = [s for s in finished if s.context.trace_id == webhook.context.trace_id]
    run = one(spans, "RunWorkflow:ReviewMR")
    schedule = one(spans, "StartActivity:run_review")
    activity = one(spans, "RunActivity:run_review")
    agent = one(spans, "agent run review")
    assert parent_of(run, start)
    # temporalio's TracingInterceptor ends RunWorkflow at once and parents the workflow's own spans
    # (activity schedules, completion) on the workflow's context, i.e. StartWorkflow.
    assert parent_of(schedule, start) and parent_of(activity, schedule) and parent_of(agent, activity)
    for name in ("fetch_mr", "cancel_older_reviews", "post_review"):
        assert parent_of(one(spans, f"RunActivity:{name}"), one(spans, f"StartActivity:{name}"))
    assert agent.attributes["agent.kind"] == "review"
    # python-gitlab's requests are client spans of the activity that made them; git has its own
    calls = [s for s in spans if s.kind == SpanKind.CLIENT and "http.method" in (s.attributes or {})]
    posting = one(spans, "RunActivity:post_review")
    assert any(parent_of(s, posting) and s.attributes["http.method"] == "POST" for s in calls)
    assert all(str(s.attributes.get("http.status_code", "")).startswith(("2", "3", "4")) for s in calls)
    fetches = [
        s for s in spans if s.name == "git fetch"
    ]  # the clone of the MR's head (executors/git_repo.py)
    assert fetches and all(s.attributes["process.exit.code"] == 0 for s in fetches)
    recorded = repr([dict(s.attributes or {}) for s in finished])
    assert all(secret not in recorded for secret in observed.settings.secret_values())
    trace_hex = format(webhook.context.trace_id, "032x")
    [handed] = observed.executor.traceparents
    assert handed.split("-")[:3] == ["00", trace_hex, f"{agent.context.span_id:016x}"]  # W3C, sampled
    assert int(handed.split("-")[3], 16) & 1
    assert webhook.resource.attributes["service.version"] == VERSION

    # --- metrics: the documented names, moved by this review --------------------------------------
    after = await scrape(observed.settings)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("copilot_webhook_deliveries_total", result="queued") >= 1
    assert grew("copilot_reviews_total", outcome="posted") == 1
    assert grew("copilot_review_duration_seconds_count", outcome="posted") == 1
    assert grew("copilot_review_findings_total", placement="inline") == 1
    assert grew("copilot_review_findings_total", placement="fallback") == 1
    assert "copilot_review_positions_rejected_total{" in after
    assert grew("copilot_agent_run_duration_seconds_count", kind="review", outcome="completed") == 1
    assert grew("copilot_agent_tokens_total", kind="review", type="prompt") > 0
    assert "http_server_duration_milliseconds_count{" in after  # FastAPI instrumentation
    assert "http_client_duration_milliseconds_count{" in after  # requests (python-gitlab, jira)

    # --- logs: JSON lines with trace and Temporal IDs, no secret ----------------------------------
    lines = [json.loads(line) for line in observed.log.getvalue().splitlines()]
    in_activities = [e for e in lines if e.get("workflow_id") == workflow_id and e.get("activity")]
    # what the activities' code logs (here: python-gitlab's HTTP calls); the SDK's own "starting" and
    # "completing" lines are outside the activity's span
    inside = [e for e in in_activities if not e["logger"].startswith("temporalio")]
    assert inside and all(e.get("trace_id") == trace_hex and e.get("span_id") for e in inside)
    text = observed.log.getvalue()
    assert all(secret not in text for secret in observed.settings.secret_values())

    # --- the run in the Temporal UI: found by its search attributes, with a summary ---------------
    # The stand-in numbers projects and MRs from 1 in every test, so on the session's shared server
    # "all reviews of this MR" includes other tests' runs; the head SHA singles this one out.
    query = f"WorkflowType='ReviewMR' AND GitLabProject='{project}' AND MergeRequestIID={mr.iid}"
    assert workflow_id in [w.id async for w in observed.client.list_workflows(query)]
    exact = f"{query} AND HeadSHA='{sha}' AND TriggerSource='webhook'"
    assert [w.id async for w in observed.client.list_workflows(exact)] == [workflow_id]
    description = await observed.client.get_workflow_handle(workflow_id).describe()
    assert (
        await description.static_summary()
        == f"ReviewMR · project {project} · MR !{mr.iid} · head {sha[:8]} · via webhook"
    )
    listed = subprocess.run(
        [
            temporal_cli(),
            "workflow",
            "list",
            "--address",
            observed.settings.temporal_address,
            "--query",
            query,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert workflow_id in listed.stdout
