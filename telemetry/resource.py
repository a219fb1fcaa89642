"""The OpenTelemetry resource every span and metric of a process carries, and the OTLP URLs."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource

from contracts import VERSION
from contracts.settings import Settings


def service_resource(settings: Settings, service: str) -> Resource:
    return Resource.create(
        {
            "service.name": service,
            "service.version": VERSION,
            "deployment.environment": settings.environment or "unset",
        }
    )


def otlp_url(settings: Settings, signal: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL (as the OTel SDKs read that variable);
    each signal goes to its own path under it."""
    return f"{settings.otel_exporter_otlp_endpoint.rstrip('/')}/v1/{signal}"
