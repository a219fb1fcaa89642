"""One server span and one duration measurement per request, as a pure ASGI middleware.

Why not opentelemetry-instrumentation-fastapi: with it, FastAPI's own native telemetry (on as soon as
a global provider exists) and the Temporal SDK's metric drain, the API spent about 15.7 ms of server
CPU per delivery against 2.6 ms for the minimal handler of bench/baseline_intake.py (measured in one
run on the 2-core machine; wrapped receive/send, several spans, histograms and up-down counters per
request). This middleware keeps what the service uses: a SERVER span `POST /webhook` continuing a W3C `traceparent` (the parent of
`StartWorkflow:ReviewMR`), and the `http.server.duration` histogram in ms
(`http_server_duration_milliseconds{http_method, http_target, http_status_code}` in Prometheus),
with the paths of the routes only, so a scanner cannot blow up the label set.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import temporalio.client
from opentelemetry import metrics, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.contrib.opentelemetry import TracingInterceptor

from contracts import VERSION
from telemetry import tracing

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("gitlab-copilot-agent.api", VERSION)
_duration = metrics.get_meter("gitlab-copilot-agent.api", VERSION).create_histogram(
    "http.server.duration", unit="ms", description="Duration of HTTP requests to the API"
)


class _Headers:
    """The W3C propagator's getter over ASGI's raw header list (only `traceparent`/`tracestate`)."""

    @staticmethod
    def get(carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if value is not None else None

    @staticmethod
    def keys(carrier: dict[str, str]) -> list[str]:
        return list(carrier)


def _trace_headers(scope: Scope) -> dict[str, str]:
    found = {}
    for name, value in scope.get("headers") or ():
        if name in (b"traceparent", b"tracestate"):
            found[name.decode()] = value.decode("latin-1")
    return found


class RequestTelemetry:
    def __init__(self, app: ASGIApp, routes: Iterable[str], excluded: Iterable[str] = ()) -> None:
        self.app = app
        self.routes = frozenset(routes)
        self.excluded = frozenset(excluded)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.excluded:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        target = scope["path"] if scope["path"] in self.routes else "other"
        status = 500  # what the client sees if the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        headers = _trace_headers(scope)
        parent = _propagator.extract(headers, getter=_Headers) if headers else None
        _carried.set(bool(headers))  # this request's own context: each request is its own task
        begin = time.perf_counter()
        with _tracer.start_as_current_span(
            f"{method} {target}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": target},
        ) as span:
            try:
                await self.app(scope, receive, send_with_status)
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(trace.StatusCode.ERROR)
                _duration.record(
                    (time.perf_counter() - begin) * 1000,
                    {"http.method": method, "http.target": target, "http.status_code": status},
                )


# Whether the request being served came with a W3C traceparent (a trace recorded upstream).
_carried: ContextVar[bool] = ContextVar("traceparent_carried", default=False)


def trace_travels() -> bool:
    """Whether a workflow started now should carry the request's trace: when this process records
    spans, or when the request belongs to a trace recorded upstream."""
    return tracing.exporting() or _carried.get()


class TracedStartsWhenRecorded(TracingInterceptor):
    """The API client's TracingInterceptor, for starts whose trace someone records. With no
    exporter and no upstream trace, its client span would be recorded by nobody, and the header it
    adds names a span that does not exist; it was about a sixth of the API's CPU per delivery
    (bench/profile_intake.py), so such starts go out without it and the worker's spans begin a trace
    of their own. Every other client call keeps the interceptor."""

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _TracedWhenRecorded(next, super().intercept_client(next))


class _TracedWhenRecorded(temporalio.client.OutboundInterceptor):
    def __init__(
        self, plain: temporalio.client.OutboundInterceptor, traced: temporalio.client.OutboundInterceptor
    ) -> None:
        super().__init__(traced)
        self._plain = plain

    async def start_workflow(self, input: temporalio.client.StartWorkflowInput) -> Any:  # noqa: A002
        if trace_travels():
            return await self.next.start_workflow(input)
        return await self._plain.start_workflow(input)
