"""The OpenTelemetry resource every span, metric and log record of a process carries, and the OTLP
exporters.

OTLP goes over gRPC or HTTP (OTEL_EXPORTER_OTLP_PROTOCOL), as the seed's did. With no protocol set
the endpoint's port decides: 4317 is the collectors' gRPC port (the seed's default,
`http://otel-collector:4317`), anything else HTTP (4318), so a seed endpoint keeps working unchanged.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import VERSION
from contracts.settings import Settings

GRPC_PORT = 4317
EXPORT_TIMEOUT_S = 5  # a collector that is down must not hold up shutdown for long


def service_resource(settings: Settings, service: str) -> Resource:
    """`service` is the component's name (gitlab-copilot-agent-api / -worker); OTEL_SERVICE_NAME,
    when set, names the service instead and the component stays an attribute."""
    return Resource.create(
        {
            "service.name": settings.otel_service_name or service,
            "service.version": VERSION,
            "deployment.environment": settings.environment or "unset",
            "gitlab_copilot_agent.component": service.removeprefix("gitlab-copilot-agent-"),
        }
    )


def otlp_protocol(settings: Settings) -> str:
    if settings.otel_exporter_otlp_protocol:
        return settings.otel_exporter_otlp_protocol
    try:
        port = urlsplit(settings.otel_exporter_otlp_endpoint).port
    except ValueError:
        port = None
    return "grpc" if port == GRPC_PORT else "http/protobuf"


def otlp_url(settings: Settings, signal: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL (as the OTel SDKs read that variable);
    over HTTP each signal goes to its own path under it, over gRPC to the endpoint itself."""
    if otlp_protocol(settings) == "grpc":
        return settings.otel_exporter_otlp_endpoint
    return f"{settings.otel_exporter_otlp_endpoint.rstrip('/')}/v1/{signal}"


def span_exporter(settings: Settings) -> SpanExporter:
    if otlp_protocol(settings) == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

        # an http:// endpoint means plaintext gRPC, https:// TLS (the exporter reads the scheme)
        return GrpcSpans(endpoint=otlp_url(settings, "traces"), timeout=EXPORT_TIMEOUT_S)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans

    return HttpSpans(endpoint=otlp_url(settings, "traces"), timeout=EXPORT_TIMEOUT_S)


def metric_exporter(settings: Settings) -> MetricExporter:
    if otlp_protocol(settings) == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics

        return GrpcMetrics(endpoint=otlp_url(settings, "metrics"), timeout=EXPORT_TIMEOUT_S)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics

    return HttpMetrics(endpoint=otlp_url(settings, "metrics"), timeout=EXPORT_TIMEOUT_S)


def log_exporter(settings: Settings) -> LogRecordExporter:
    if otlp_protocol(settings) == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs

        return GrpcLogs(endpoint=otlp_url(settings, "logs"), timeout=EXPORT_TIMEOUT_S)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs

    return HttpLogs(endpoint=otlp_url(settings, "logs"), timeout=EXPORT_TIMEOUT_S)
