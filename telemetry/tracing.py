"""Traces: one SDK TracerProvider per process, OTLP export (gRPC or HTTP) only when an endpoint is set.

Spans cross process boundaries through temporalio's TracingInterceptor (contracts/temporal.py) and,
to the agent run, as a W3C `traceparent` (the TRACEPARENT variable of the Copilot CLI or the Job).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from contracts.settings import Settings
from telemetry.resource import service_resource, span_exporter

_lock = threading.Lock()
_provider: TracerProvider | None = None

tracer = trace.get_tracer("gitlab-copilot-agent")


class _ExportingProvider(TracerProvider):
    """Knows whether anything consumes its spans (an OTLP exporter, or a test's processor)."""

    exporting = False

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        self.exporting = True
        super().add_span_processor(span_processor)


class _RecordWhileExported(Sampler):
    """Records spans only while the provider has a processor; otherwise they are non-recording but
    keep valid trace and span IDs (log correlation and the traceparent handed on still work). With no
    OTLP endpoint a recorded span goes nowhere, yet cost CPU on every webhook (bench/)."""

    def __init__(self, provider: _ExportingProvider) -> None:
        self._provider = provider
        self._sampled = ParentBased(ALWAYS_ON)

    def should_sample(self, parent_context: Context | None, *args, **kwargs) -> SamplingResult:  # type: ignore[no-untyped-def]
        if self._provider.exporting:
            return self._sampled.should_sample(parent_context, *args, **kwargs)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "RecordWhileExported"


def setup_tracing(settings: Settings, service: str) -> TracerProvider:
    """The process's TracerProvider, created (and made global) on the first call."""
    global _provider
    with _lock:
        if _provider is None:
            _provider = _ExportingProvider(resource=service_resource(settings, service))
            _provider.sampler = _RecordWhileExported(_provider)
            if settings.otel_exporter_otlp_endpoint:
                _provider.add_span_processor(BatchSpanProcessor(span_exporter(settings)))
            trace.set_tracer_provider(_provider)
        return _provider


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, or None outside any recorded span."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def agent_run_span(kind: str, run_id: str) -> Iterator[trace.Span]:
    """The span of one agent run; its traceparent is what the agent process receives."""
    with tracer.start_as_current_span(
        f"agent run {kind}", attributes={"agent.kind": kind, "agent.run_id": run_id}
    ) as span:
        yield span


def exporting() -> bool:
    """Whether this process's spans go anywhere (an OTLP exporter or a test's processor)."""
    return _provider is not None and _provider.exporting


def span_processor() -> SpanProcessor | None:
    """The processor every finished span of this process goes through (None while nothing exports);
    for spans made elsewhere and handed in finished (telemetry/cli_spans.py). The SDK keeps it in a
    private attribute, stable since 1.0; without it, forwarding is skipped."""
    if not exporting():
        return None
    return getattr(_provider, "_active_span_processor", None)
