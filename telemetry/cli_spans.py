"""The Copilot CLI's own spans, forwarded into the run's trace.

The CLI (1.0.102) has OpenTelemetry built in (`copilot help monitoring`): GenAI-convention spans
`invoke_agent`, `chat <model>` and `execute_tool <tool>` with token usage, written as JSON lines to
COPILOT_OTEL_FILE_EXPORTER_PATH. In prompt mode it reads no TRACEPARENT (its parent context is only
settable per session send of the SDK protocol), and its OTLP exporter speaks HTTP only and needs
network the agent sandbox does not have. So the run gets a trace file in its run directory, and
afterwards the worker re-parents the file's spans under the `agent run` span (the run's trace ID,
the CLI's root spans as children of that span, span IDs and timestamps kept) and hands them to this
process's span processors, which export them with everything else.

The file is written inside the agent's sandbox, so it is untrusted: at most MAX_SPANS spans from at
most MAX_FILE_BYTES, only spans named as the CLI names them, primitive attribute values only, strings
cut to MAX_VALUE_CHARS and scrubbed of the run's secrets, no events (they could carry message text).
A forged file can add bounded noise to its own run's trace and nothing else.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from telemetry import tracing

log = logging.getLogger(__name__)

TRACE_FILE_ENV = "COPILOT_OTEL_FILE_EXPORTER_PATH"
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_SPANS = 500
MAX_ATTRIBUTES = 64
MAX_VALUE_CHARS = 1024
_NAME = re.compile(r"^(invoke_agent|chat|execute_tool|create_agent|embeddings)( [\w.:/@-]{1,120})?$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.SERVER,
    2: SpanKind.CLIENT,
    3: SpanKind.PRODUCER,
    4: SpanKind.CONSUMER,
}


def trace_file_env(run_dir: Path) -> dict[str, str]:
    """The CLI's environment for a trace file in `run_dir`, only while spans are exported."""
    return {TRACE_FILE_ENV: str(run_dir / "cli-traces.jsonl")} if tracing.exporting() else {}


def _nanos(value: Any) -> int | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v >= 0 for v in value):
        return value[0] * 1_000_000_000 + value[1]
    return None


def _clean(value: Any, secrets: Iterable[str]) -> Any:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, "[redacted]")
        return value[:MAX_VALUE_CHARS]
    if isinstance(value, list) and all(isinstance(v, str | bool | int | float) for v in value):
        return tuple(_clean(v, secrets) for v in value[:32])
    return None


def parse(path: Path, secrets: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The span records of a CLI trace file that pass the checks above, in file order."""
    secrets = tuple(secrets)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            log.warning("CLI trace file of %d bytes ignored (limit %d)", path.stat().st_size, MAX_FILE_BYTES)
            return []
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        if not isinstance(raw, dict) or raw.get("type") != "span":
            continue
        name, span_id, parent_id = raw.get("name"), raw.get("spanId"), raw.get("parentSpanId")
        start, end = _nanos(raw.get("startTime")), _nanos(raw.get("endTime"))
        if not (
            isinstance(name, str) and _NAME.match(name) and isinstance(span_id, str) and _HEX16.match(span_id)
        ):
            continue
        if start is None or end is None or end < start:
            continue
        attributes = {}
        for key, value in list((raw.get("attributes") or {}).items())[:MAX_ATTRIBUTES]:
            cleaned = _clean(value, secrets)
            if isinstance(key, str) and len(key) <= 128 and cleaned is not None:
                attributes[key] = cleaned
        status = raw.get("status") or {}
        records.append(
            {
                "name": name,
                "span_id": int(span_id, 16),
                "parent_id": int(parent_id, 16)
                if isinstance(parent_id, str) and _HEX16.match(parent_id)
                else None,
                "start": start,
                "end": end,
                "kind": _KINDS.get(raw.get("kind"), SpanKind.INTERNAL),
                "error": isinstance(status, dict) and status.get("code") == 2,
                "attributes": attributes,
                "service": _clean(
                    ((raw.get("resource") or {}).get("attributes") or {}).get("service.name"), ()
                )
                or "github-copilot",
                "version": _clean(
                    ((raw.get("resource") or {}).get("attributes") or {}).get("service.version"), ()
                )
                or "",
            }
        )
        if len(records) >= MAX_SPANS:
            break
    return records


def forward(path: Path, parent: SpanContext | None = None, secrets: Iterable[str] = ()) -> int:
    """Export the spans of the CLI trace file `path` as descendants of `parent` (default: the
    current span); returns how many. Nothing happens while no span is exported or recorded."""
    parent = parent or trace.get_current_span().get_span_context()
    processor = tracing.span_processor()
    if processor is None or not parent.is_valid or not parent.trace_flags.sampled:
        return 0
    records = parse(path, secrets)
    ids = {r["span_id"] for r in records}
    scope = InstrumentationScope("github.copilot")
    for record in records:
        own_parent = record["parent_id"] if record["parent_id"] in ids else parent.span_id
        context = SpanContext(
            parent.trace_id, record["span_id"], is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )
        span = ReadableSpan(
            name=record["name"],
            context=context,
            parent=SpanContext(
                parent.trace_id, own_parent, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)
            ),
            resource=Resource({"service.name": record["service"], "service.version": record["version"]}),
            attributes=record["attributes"],
            kind=record["kind"],
            status=Status(StatusCode.ERROR) if record["error"] else Status(StatusCode.UNSET),
            start_time=record["start"],
            end_time=record["end"],
            instrumentation_scope=scope,
        )
        processor.on_end(span)
    return len(records)
