"""The Copilot CLI's own spans join the run's trace: a real CLI run (sandboxed, scripted model) with
spans exported writes its trace file, and the worker re-parents invoke_agent / chat / execute_tool
under the agent-run span. The file is the agent's to write, so a forged one adds only bounded,
scrubbed spans to its own run's trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts.settings import Settings
from executors.copilot_cli import CopilotRun, run_copilot
from standins.model_server import ModelServer, Reply, ScriptedBrain
from telemetry import cli_spans, tracing

MakeRun = Callable[..., CopilotRun]
FINDING = {
    "file": "app.py",
    "line": 2,
    "severity": "critical",
    "title": "eval of input",
    "body": "Do not eval.",
}


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    tracing.setup_tracing(Settings(_env_file=None), "gitlab-copilot-agent-test").add_span_processor(
        SimpleSpanProcessor(spans)
    )
    yield spans
    spans.shutdown()  # the provider is process-wide: stop collecting for later tests


async def test_the_cli_spans_of_a_run_are_children_of_its_agent_run_span(
    model_server: ModelServer, make_run: MakeRun, exported: InMemorySpanExporter
):
    model_server.brain = ScriptedBrain().when(
        Reply.call("view", path="app.py"),
        Reply.call("reviewer-report_finding", FINDING),
        Reply.call("reviewer-finish_review", summary="One issue."),
        Reply.text("Done."),
        prompt_contains="Review this change",
    )
    with tracing.agent_run_span("review", "run-1") as agent:
        outcome = await run_copilot(make_run("Review this change"))
    assert outcome.findings
    finished = exported.get_finished_spans()
    (run_span,) = [s for s in finished if s.name == "agent run review"]
    cli = [
        s for s in finished if s.instrumentation_scope and s.instrumentation_scope.name == "github.copilot"
    ]
    names = [s.name for s in cli]
    assert names.count("invoke_agent") == 1 and sum(n.startswith("chat ") for n in names) >= 4, names
    assert "execute_tool view" in names, names  # the CLI traces its built-in tools (not MCP ones)
    assert {s.context.trace_id for s in cli} == {agent.get_span_context().trace_id}
    (invoke,) = [s for s in cli if s.name == "invoke_agent"]
    assert invoke.parent.span_id == run_span.context.span_id
    chats = [s for s in cli if s.name.startswith("chat ")]
    assert all(s.parent.span_id == invoke.context.span_id for s in chats)
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in chats) > 1000
    assert invoke.resource.attributes["service.name"] == "github-copilot"


def test_no_trace_file_while_nothing_exports(tmp_path, monkeypatch):
    monkeypatch.setattr(tracing, "_provider", None)
    assert cli_spans.trace_file_env(tmp_path) == {}


def _span(name: str, span_id: str, parent: str | None = None, **attributes) -> str:
    record = {"type": "span", "name": name, "spanId": span_id, "startTime": [10, 0], "endTime": [11, 0],
              "attributes": attributes, "events": [{"name": "gen_ai.user.message", "attributes": {"content": "x"}}]}  # fmt: skip
    if parent:
        record["parentSpanId"] = parent
    return json.dumps(record)


def test_a_forged_trace_file_adds_only_bounded_scrubbed_spans(tmp_path, exported):
    secret = "glpat-canary-0123456789"
    lines = [
        _span("invoke_agent", "a" * 16),
        _span("chat gpt-4.1", "b" * 16, "a" * 16, note=f"token {secret}", big="y" * 5000, nested={"no": 1}),
        _span("POST /admin", "c" * 16),  # not a name the CLI uses
        _span("chat x", "not-hex"),
        "not json",
        json.dumps({"type": "metric", "name": "m"}),
        *(_span("execute_tool bash", f"{i:016x}") for i in range(1, 2000)),
    ]
    path = tmp_path / "cli-traces.jsonl"
    path.write_text("\n".join(lines))
    with tracing.tracer.start_as_current_span("agent run review") as agent:
        count = cli_spans.forward(path, secrets=[secret])
    assert count == cli_spans.MAX_SPANS
    forwarded = [s for s in exported.get_finished_spans() if s.instrumentation_scope.name == "github.copilot"]
    assert len(forwarded) == cli_spans.MAX_SPANS and "POST /admin" not in {s.name for s in forwarded}
    assert {s.context.trace_id for s in forwarded} == {agent.get_span_context().trace_id}
    (chat,) = [s for s in forwarded if s.name == "chat gpt-4.1"]
    assert (
        chat.attributes["note"] == "token [redacted]"
        and len(chat.attributes["big"]) == cli_spans.MAX_VALUE_CHARS
    )
    assert "nested" not in chat.attributes and not chat.events
    (invoke,) = [s for s in forwarded if s.name == "invoke_agent"]
    assert chat.parent.span_id == invoke.context.span_id
    assert invoke.parent.span_id == agent.get_span_context().span_id


def test_an_oversized_or_missing_file_forwards_nothing(tmp_path, exported):
    big = tmp_path / "big.jsonl"
    big.write_text(_span("invoke_agent", "a" * 16) + "\n" + " " * cli_spans.MAX_FILE_BYTES)
    with tracing.tracer.start_as_current_span("agent run review"):
        assert cli_spans.forward(big) == 0
        assert cli_spans.forward(Path(tmp_path / "absent.jsonl")) == 0
