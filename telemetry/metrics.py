"""Metrics of the service: the instruments every flow records to, and where they are exported.

Instruments live on a meter taken before the provider exists (OpenTelemetry's proxy meter), so any
module can import and record to them at import time. `setup_metrics` installs the MeterProvider: a
Prometheus reader (scraped on METRICS_PORT) and, when OTEL_EXPORTER_OTLP_ENDPOINT is set, OTLP
(gRPC or HTTP, telemetry/resource.py).

    from telemetry import metrics
    metrics.reviews.add(1, {"outcome": "posted"})

Names as Prometheus shows them are listed in the README ("Observability").
"""

from __future__ import annotations

import json
import logging
import threading

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from prometheus_client import start_http_server

from contracts import VERSION
from contracts.settings import Settings
from telemetry.resource import metric_exporter, service_resource

log = logging.getLogger(__name__)
_meter = metrics.get_meter("gitlab-copilot-agent", VERSION)

# --- instruments (Prometheus name in the comment) ----------------------------------------------------
webhook_deliveries = _meter.create_counter(  # copilot_webhook_deliveries_total{result}
    "copilot.webhook.deliveries", description="Webhook deliveries by result (queued, duplicate, ignored, ...)"
)
reviews = _meter.create_counter(  # copilot_reviews_total{outcome}
    "copilot.reviews", description="Finished ReviewMR runs by outcome"
)
review_duration = _meter.create_histogram(  # copilot_review_duration_seconds{outcome}
    "copilot.review.duration", unit="s", description="Start to end of ReviewMR runs"
)
review_findings = _meter.create_counter(  # copilot_review_findings_total{placement}
    "copilot.review.findings", description="Findings posted, placement inline or fallback (overview note)"
)
markers_rejected = _meter.create_counter(  # copilot_markers_rejected_total
    "copilot.markers.rejected",
    description="Markers in the agent's notes ignored as copied, invented or altered",
)
review_positions_rejected = _meter.create_counter(  # copilot_review_positions_rejected_total
    "copilot.review.positions_rejected", description="Inline positions GitLab refused (posted as fallback)"
)
discussions = _meter.create_counter(  # copilot_discussions_total{outcome}
    "copilot.discussions", description="Finished MRDiscussion runs by outcome"
)
discussion_duration = _meter.create_histogram(  # copilot_discussion_duration_seconds{outcome}
    "copilot.discussion.duration", unit="s", description="Start to end of MRDiscussion runs"
)
implementations = _meter.create_counter(  # copilot_implementations_total{outcome}
    "copilot.implementations", description="Finished ImplementIssue runs by outcome"
)
implementation_duration = _meter.create_histogram(  # copilot_implementation_duration_seconds{outcome}
    "copilot.implementation.duration", unit="s", description="Start to end of ImplementIssue runs"
)
agent_run_duration = _meter.create_histogram(  # copilot_agent_run_duration_seconds{kind,outcome}
    "copilot.agent_run.duration", unit="s", description="Agent (Copilot CLI) runs by task kind and outcome"
)
agent_tokens = _meter.create_counter(  # copilot_agent_tokens_total{kind,type}
    "copilot.agent.tokens", description="Model tokens of agent runs, when the provider reports them"
)

# --- the finding ledger (activities/review_ledger.py; README "The finding ledger") ------------------
finding_transitions = _meter.create_counter(  # copilot_finding_transitions_total{project,state,severity,category}
    "copilot.finding.transitions",
    description="Findings entering a ledger state (open = raised; addressed, verified, resolved, rebutted, ...)",
)
finding_time_to_address = (
    _meter.create_histogram(  # copilot_finding_time_to_address_seconds{project,severity}
        "copilot.finding.time_to_address",
        unit="s",
        description="From a finding raised to the code at it changed",
    )
)
finding_repeats_prevented = _meter.create_counter(  # copilot_finding_repeats_prevented_total{project}
    "copilot.finding.repeats_prevented",
    description="Findings the model repeated (same or reworded), not posted",
)
finding_held_back = _meter.create_counter(  # copilot_finding_held_back_total{project}
    "copilot.finding.held_back", description="Findings on lines the new commits did not touch, not posted"
)


def record_agent_run(kind: str, outcome: str, duration_s: float, usage: object | None = None) -> None:
    """One agent run: its duration and, if the provider reported it, its token usage
    (`usage` has `prompt_tokens` and `completion_tokens`, as contracts.agent_tasks.TokenUsage)."""
    agent_run_duration.record(max(duration_s, 0.0), {"kind": kind, "outcome": outcome})
    if usage is not None:
        agent_tokens.add(getattr(usage, "prompt_tokens", 0) or 0, {"kind": kind, "type": "prompt"})
        agent_tokens.add(getattr(usage, "completion_tokens", 0) or 0, {"kind": kind, "type": "completion"})


_DELIVERY_RESULTS = frozenset({"queued", "duplicate", "ignored", "rejected", "unavailable"})


def record_delivery(response_body: bytes | memoryview) -> None:
    """Count a webhook delivery by the `status` of the JSON answer (a fixed set; "other" else)."""
    try:
        status = json.loads(bytes(response_body)).get("status")
    except (ValueError, AttributeError):
        status = None
    ok = isinstance(status, str) and status in _DELIVERY_RESULTS
    webhook_deliveries.add(1, {"result": status if ok else "other"})


# --- providers and the scrape endpoint ---------------------------------------------------------------
_lock = threading.Lock()
_provider: MeterProvider | None = None
_serving: set[int] = set()


def setup_metrics(settings: Settings, service: str) -> MeterProvider:
    """The process's MeterProvider (created and made global on the first call), and the Prometheus
    endpoint on METRICS_PORT when set. A port that cannot be bound is logged, not fatal."""
    global _provider
    with _lock:
        if _provider is None:
            readers: list[MetricReader] = [PrometheusMetricReader()]
            if settings.otel_exporter_otlp_endpoint:
                readers.append(PeriodicExportingMetricReader(metric_exporter(settings)))
            _provider = MeterProvider(resource=service_resource(settings, service), metric_readers=readers)
            metrics.set_meter_provider(_provider)
        if settings.metrics_port and settings.metrics_port not in _serving:
            try:
                start_http_server(settings.metrics_port)
                _serving.add(settings.metrics_port)
            except OSError as exc:
                log.warning("metrics endpoint not started on port %d: %s", settings.metrics_port, exc)
        return _provider
