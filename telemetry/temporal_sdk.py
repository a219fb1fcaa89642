"""The Temporal SDK's own metrics (polls, task latencies, slots, requests...) in our MeterProvider.

The SDK core records into a MetricBuffer; temporalio's MetricsExporter drains it into OpenTelemetry
instruments, so they reach the same Prometheus endpoint and OTLP exporter as our own metrics (the
SDK's PrometheusConfig would need a second port). One Runtime per process: the SDK runs its core
threads per Runtime, and clients must be created with it to be measured.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from opentelemetry import metrics
from temporalio.contrib.opentelemetry import MetricsExporter
from temporalio.runtime import MetricBuffer, MetricBufferDurationFormat, Runtime, TelemetryConfig

_BUFFER_SIZE = 100_000  # the SDK drops updates (with an error) when the buffer fills between drains
_lock = threading.Lock()
_runtime: Runtime | None = None


def temporal_runtime() -> Runtime:
    """The process's measured Runtime; pass it to `contracts.temporal.connect(..., runtime=...)`.

    Call after `telemetry.setup`, so the drain writes into the real MeterProvider."""
    global _runtime
    with _lock:
        if _runtime is None:
            buffer = MetricBuffer(_BUFFER_SIZE, duration_format=MetricBufferDurationFormat.SECONDS)
            _runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
            exporter = MetricsExporter(
                buffer, metrics.get_meter_provider(), poll_interval=timedelta(seconds=2)
            )
            # Its own event loop on a daemon thread: the drain outlives any one asyncio loop
            # (tests run several) and needs nothing from the service's loop.
            threading.Thread(
                target=asyncio.run, args=(exporter.run(),), name="temporal-metrics", daemon=True
            ).start()
        return _runtime
