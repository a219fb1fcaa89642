"""Observability of the service: OpenTelemetry traces and metrics, JSON logs with redaction.

`setup(settings, "api" | "worker")` is called once at process start (by `api.app.create_app` and
`worker.py`); a second call replaces the log handler and keeps the first tracer and meter providers
(OpenTelemetry allows one global provider per process). Everything works with no collector: spans
and metrics are only exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and an exporter
that cannot reach it logs and drops, it never blocks the service.
"""

from __future__ import annotations

from typing import Literal

from contracts.settings import Settings
from telemetry import logs, metrics, tracing

Component = Literal["api", "worker"]


def setup(settings: Settings, component: Component) -> None:
    service = f"gitlab-copilot-agent-{component}"
    logs.setup_logging(settings)
    tracing.setup_tracing(settings, service)
    metrics.setup_metrics(settings, service)
