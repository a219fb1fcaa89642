"""Logs: one JSON object per line on stderr, with trace and Temporal IDs, secrets redacted; with an
OTLP endpoint also exported as OpenTelemetry log records (`setup_log_export`), redacted the same way.
The HTTP, gRPC and Kubernetes client libraries log at LOG_LEVEL_LIBRARIES (WARNING) while LOG_LEVEL
is lower: at DEBUG their per-request lines drowned the service's own.

Every record passes the redaction filter before it is formatted: configured secret values
(`Settings.secret_values()`) and token-shaped strings (GitLab `glpat-`..., GitHub `ghp_`...,
`github_pat_`..., `Bearer ...`, credentials in URLs) become `[REDACTED]`, in the message, its
arguments, exception tracebacks and stack info.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from temporalio import activity

from contracts.settings import Settings
from telemetry.resource import log_exporter, service_resource

REDACTED = "[REDACTED]"
_TOKEN_SHAPES = re.compile(
    r"\bgl[a-z]{2,6}-[A-Za-z0-9_\-]{16,}"  # GitLab: glpat-, glptt-, gldt-, glrt-, gloas-, ...
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub classic tokens
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"  # GitHub fine-grained tokens
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)
_HEADER = re.compile(
    r"\b(private-token|x-gitlab-token|x-api-key|api[_-]?key|password)([\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/\s:@]+:[^/\s@]+@")
_MIN_SECRET = 4  # shorter values would redact ordinary words and protect nothing


class Redactor:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = _TOKEN_SHAPES.sub(REDACTED, text)
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


class RedactingFilter(logging.Filter):
    """Rewrites the record in place, so every handler after it sees only the redacted text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor
        self._exceptions = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not break the caller
            message = f"{record.msg!r} (arguments did not match the format)"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exceptions.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        entry.update(_temporal_ids(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def _temporal_ids(record: logging.LogRecord) -> dict[str, str]:
    # workflow.logger / activity.logger put the run's details on the record; plain loggers called
    # from inside an activity get them from the activity context.
    wf = getattr(record, "temporal_workflow", None)
    if isinstance(wf, dict):
        return {k: str(wf[k]) for k in ("workflow_id", "run_id", "workflow_type") if k in wf}
    act = getattr(record, "temporal_activity", None)
    if isinstance(act, dict):
        return {
            "workflow_id": str(act.get("workflow_id", "")),
            "activity": str(act.get("activity_type", "")),
        }
    if activity.in_activity():
        info = activity.info()
        return {"workflow_id": info.workflow_id or "", "activity": info.activity_type}
    return {}


class _ServiceHandler(logging.StreamHandler):
    """Writes to the given stream, or to whatever `sys.stderr` is at the time of each record (so a
    replaced or closed stderr, as under test runners, never breaks logging)."""

    def __init__(self, stream: IO[str] | None) -> None:
        super().__init__(stream or sys.stderr)
        self._fixed = stream

    def emit(self, record: logging.LogRecord) -> None:
        if self._fixed is None:
            self.stream = sys.stderr
        super().emit(record)


NOISY_LIBRARIES = (
    "urllib3",
    "requests",
    "httpx",
    "httpcore",
    "kubernetes",
    "grpc",
    "aiohttp.access",
    "hpack",
    "asyncio",
)


def setup_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """JSON lines on the root logger at LOG_LEVEL; uvicorn's loggers propagate to it. Calling again
    replaces the handler installed before (not any other)."""
    handler = _ServiceHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(Redactor(settings.secret_values())))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ServiceHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    quiet = logging.getLevelName(settings.log_level_libraries)
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(quiet if quiet > root.level else logging.NOTSET)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    return handler


class _ExportHandler(LoggingHandler):
    """The OTLP log handler this module installs (so a second set-up replaces only its own)."""


def setup_log_export(settings: Settings, service: str) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, every record the root logger takes is also an OTLP
    log record (batched; trace and span IDs from the current span), after the same redaction as the
    JSON lines. The LoggerProvider is created once per process, like the tracer's."""
    global _log_provider
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ExportHandler)]:
        root.removeHandler(old)
    if not settings.otel_exporter_otlp_endpoint:
        return
    if _log_provider is None:
        _log_provider = LoggerProvider(resource=service_resource(settings, service))
        _log_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter(settings)))
        set_logger_provider(_log_provider)
    handler = _ExportHandler(level=logging.NOTSET, logger_provider=_log_provider)
    handler.addFilter(RedactingFilter(Redactor(settings.secret_values())))
    root.addHandler(handler)


_log_provider: LoggerProvider | None = None
