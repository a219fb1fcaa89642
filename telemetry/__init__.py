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
    logs.setup_log_export(settings, service)
    tracer_provider = tracing.setup_tracing(settings, service)
    meter_provider = metrics.setup_metrics(settings, service)
    if component == "worker":
        instrument_http_clients(tracer_provider, meter_provider)


def instrument_http_clients(tracer_provider: object, meter_provider: object) -> None:
    """python-gitlab and jira speak HTTP through `requests`: with its OpenTelemetry instrumentation
    every GitLab and Jira call is a client span under the activity's span (method, host, path,
    status; the URL's credentials removed by the library, and no header is recorded) and a sample of
    `http.client.duration`. Git runs as a subprocess and has spans of its own (executors/git_repo.py).
    Idempotent: a second setup in one process (tests) keeps the first instrumentation."""
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    instrumentor = RequestsInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
