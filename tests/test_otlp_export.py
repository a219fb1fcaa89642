"""The telemetry contract of the seed: OTLP over gRPC and over HTTP (OTEL_EXPORTER_OTLP_PROTOCOL, or
the endpoint's port when unset) and OTEL_SERVICE_NAME, into a real collector stand-in: a gRPC server
speaking the OTLP trace and metrics services (opentelemetry-proto's generated servicers) and an HTTP
server taking OTLP/protobuf posts. Each export runs in its own process (the providers are global).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from contracts.settings import Settings
from telemetry.resource import otlp_protocol, otlp_url

REPO_ROOT = Path(__file__).resolve().parent.parent


class Received:
    """What a collector stand-in was sent: resource service names, span names, metric names."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.services: set[str] = set()
        self.components: set[str] = set()
        self.spans: set[str] = set()
        self.metrics: set[str] = set()
        self.logs: list[tuple[str, str, bytes]] = []  # (severity, body, trace id)

    def _resource(self, resource) -> None:
        for attr in resource.attributes:
            if attr.key == "service.name":
                self.services.add(attr.value.string_value)
            if attr.key == "gitlab_copilot_agent.component":
                self.components.add(attr.value.string_value)

    def traces(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                self._resource(resource_spans.resource)
                for scope in resource_spans.scope_spans:
                    self.spans.update(span.name for span in scope.spans)

    def logs_(self, request: logs_service_pb2.ExportLogsServiceRequest) -> None:
        with self.lock:
            for resource_logs in request.resource_logs:
                self._resource(resource_logs.resource)
                for scope in resource_logs.scope_logs:
                    self.logs.extend(
                        (r.severity_text, r.body.string_value, r.trace_id) for r in scope.log_records
                    )

    def metrics_(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        with self.lock:
            for resource_metrics in request.resource_metrics:
                self._resource(resource_metrics.resource)
                for scope in resource_metrics.scope_metrics:
                    self.metrics.update(metric.name for metric in scope.metrics)


@pytest.fixture
def grpc_collector():
    received = Received()

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):  # noqa: N802 (generated name)
            received.traces(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request, context):  # noqa: N802
            received.metrics_(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):  # noqa: N802
            received.logs_(request)
            return logs_service_pb2.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", received
    server.stop(grace=None)


@pytest.fixture
def http_collector():
    received = Received()
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            paths.append(self.path)
            if self.path == "/v1/traces":
                received.traces(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            elif self.path == "/v1/metrics":
                received.metrics_(metrics_service_pb2.ExportMetricsServiceRequest.FromString(body))
            elif self.path == "/v1/logs":
                received.logs_(logs_service_pb2.ExportLogsServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received, paths
    server.shutdown()
    server.server_close()


SECRET = "glpat-otlp-canary-0123456789abcdef"
EXPORT_ONE_SPAN_AND_METRIC = """
import logging, sys
from opentelemetry import metrics as otel_metrics, trace
from opentelemetry._logs import get_logger_provider
from contracts.settings import Settings
import telemetry
from telemetry import metrics, tracing
telemetry.setup(Settings(_env_file=None), sys.argv[1])
with tracing.tracer.start_as_current_span("exported work"):
    metrics.reviews.add(1, {"outcome": "posted"})
    logging.getLogger("service").warning("exported line with token %s", sys.argv[2])
    logging.getLogger("urllib3.connectionpool").debug("a library's per-request line")
trace.get_tracer_provider().shutdown()
otel_metrics.get_meter_provider().shutdown()
get_logger_provider().shutdown()
"""


def _export(env: dict[str, str], component: str = "worker") -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", EXPORT_ONE_SPAN_AND_METRIC, component, SECRET],
        cwd=REPO_ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def test_otlp_over_grpc_with_the_protocol_set(grpc_collector):
    endpoint, received = grpc_collector
    _export({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert received.spans == {"exported work"}
    assert "copilot.reviews" in received.metrics
    assert received.services == {"gitlab-copilot-agent-worker"} and received.components == {"worker"}
    assert_exported_log_line(received)


def assert_exported_log_line(received: Received) -> None:
    """The service's line went out as a log record of the span, redacted; the library's did not."""
    [(severity, body, trace_id)] = received.logs
    assert severity == "WARN" and body == "exported line with token [REDACTED]"
    assert SECRET not in body and len(trace_id) == 16 and any(trace_id)


def test_otlp_over_http_with_the_service_name_of_the_environment(http_collector):
    endpoint, received, paths = http_collector
    _export({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "copilot-agent-prod"}, "api")
    assert set(paths) == {"/v1/traces", "/v1/metrics", "/v1/logs"}
    assert received.spans == {"exported work"} and "copilot.reviews" in received.metrics
    assert received.services == {"copilot-agent-prod"} and received.components == {"api"}
    assert_exported_log_line(received)


@pytest.mark.parametrize(
    ("endpoint", "protocol", "expected", "url"),
    [
        ("http://otel-collector:4317", "", "grpc", "http://otel-collector:4317"),  # the seed's example
        ("http://otel-collector:4318", "", "http/protobuf", "http://otel-collector:4318/v1/traces"),
        ("https://otlp.example.com", "", "http/protobuf", "https://otlp.example.com/v1/traces"),
        (
            "http://otel-collector:4317",
            "http/protobuf",
            "http/protobuf",
            "http://otel-collector:4317/v1/traces",
        ),
        ("https://otlp.example.com:443", "grpc", "grpc", "https://otlp.example.com:443"),
    ],
)
def test_the_protocol_follows_the_setting_else_the_port(endpoint, protocol, expected, url):
    settings = Settings(
        _env_file=None, otel_exporter_otlp_endpoint=endpoint, otel_exporter_otlp_protocol=protocol
    )
    assert otlp_protocol(settings) == expected
    assert otlp_url(settings, "traces") == url


def test_an_unsupported_protocol_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="otel_exporter_otlp_protocol"):
        Settings(_env_file=None)
