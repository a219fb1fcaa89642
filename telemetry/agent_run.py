"""One agent run, observed: a span whose W3C traceparent the agent process receives (TRACEPARENT
of the local CLI, env of the Kubernetes Job), and its duration, outcome and token usage as metrics.

Every flow's activity runs its agent through `run_agent(self.executor, task, run_id=...)`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from telemetry import metrics
from telemetry.tracing import agent_run_span, current_traceparent


async def run_agent(executor: Any, task: Any, *, run_id: str) -> Any:
    kind = str(task.kind)
    started = time.monotonic()
    with agent_run_span(kind, run_id) as span:
        try:
            result = await executor.run(task, run_id=run_id, traceparent=current_traceparent())
        except asyncio.CancelledError:
            metrics.record_agent_run(kind, "cancelled", time.monotonic() - started)
            raise
        except Exception:
            metrics.record_agent_run(kind, "failed", time.monotonic() - started)
            raise
        usage = getattr(result, "usage", None)
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
        metrics.record_agent_run(kind, "completed", time.monotonic() - started, usage)
        return result
