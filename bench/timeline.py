"""Where a run's time goes, read from its Temporal history: each step with its offset from the start.

Workflow tasks and activities (scheduled -> started -> completed), local activities (recorded when
their workflow task completes), signals and child workflows, each as one line. The benchmarks print it for a
typical run, so a figure comes with the sequence that made it.

    .venv/bin/python -m bench.timeline <workflow id> [--address 127.0.0.1:7233]
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client


@dataclass
class Step:
    what: str
    begin: datetime
    end: datetime | None = None
    started: datetime | None = None  # an activity's start by a worker (after its queue wait)


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime()


def steps(events: list[HistoryEvent]) -> list[Step]:
    """The run's steps in the order they began."""
    out: list[Step] = []
    scheduled: dict[int, Step] = {}
    children: dict[str, Step] = {}
    task = Step("workflow task", datetime.min)
    for event in events:
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        when = _time(event)
        if kind == "ACTIVITY_TASK_SCHEDULED":
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = step = Step(f"activity {name}", when)
            out.append(step)
        elif kind == "ACTIVITY_TASK_STARTED":
            scheduled[event.activity_task_started_event_attributes.scheduled_event_id].started = when
        elif kind in ("ACTIVITY_TASK_COMPLETED", "ACTIVITY_TASK_FAILED", "ACTIVITY_TASK_TIMED_OUT"):
            attrs = getattr(event, f"{kind.lower()}_event_attributes")
            scheduled[attrs.scheduled_event_id].end = when
        elif kind == "WORKFLOW_TASK_SCHEDULED":
            task = Step("workflow task", when)
            out.append(task)
        elif kind == "WORKFLOW_TASK_STARTED":
            task.started = when
        elif kind in ("WORKFLOW_TASK_COMPLETED", "WORKFLOW_TASK_FAILED", "WORKFLOW_TASK_TIMED_OUT"):
            task.end = when
        elif kind == "MARKER_RECORDED":
            out.append(Step("local activity (recorded)", when, when))
        elif kind == "WORKFLOW_EXECUTION_SIGNALED":
            name = event.workflow_execution_signaled_event_attributes.signal_name
            out.append(Step(f"signal {name} received", when, when))
        elif kind == "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED":
            name = event.signal_external_workflow_execution_initiated_event_attributes.signal_name
            out.append(Step(f"signal {name} sent", when, when))
        elif kind == "START_CHILD_WORKFLOW_EXECUTION_INITIATED":
            child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            children[child] = step = Step(f"child {child.rsplit(':', 1)[-1]}", when)
            out.append(step)
        elif kind in ("CHILD_WORKFLOW_EXECUTION_STARTED",):
            child = event.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
            children[child].started = when
        elif kind.startswith("CHILD_WORKFLOW_EXECUTION_") and kind != "CHILD_WORKFLOW_EXECUTION_STARTED":
            attrs = getattr(event, f"{kind.lower()}_event_attributes")
            children[attrs.workflow_execution.workflow_id].end = when
        elif kind == "WORKFLOW_EXECUTION_COMPLETED":
            out.append(Step("completed", when, when))
    return out


def render(events: list[HistoryEvent]) -> list[str]:
    if not events:
        return []
    zero = _time(events[0])

    def ms(t: datetime | None) -> str:
        return f"{(t - zero).total_seconds() * 1000:7.0f}" if t is not None else "      -"

    lines = ["     begin  started      end  (ms from the run's start)"]
    for step in steps(events):
        lines.append(f"   {ms(step.begin)}  {ms(step.started)}  {ms(step.end)}  {step.what}")
    return lines


async def timeline(client: Client, workflow_id: str) -> list[str]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return render(list(history.events))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workflow_id")
    parser.add_argument("--address", default="127.0.0.1:7233")
    parser.add_argument("--namespace", default="default")
    args = parser.parse_args()
    client = await Client.connect(args.address, namespace=args.namespace)
    print("\n".join(await timeline(client, args.workflow_id)))


if __name__ == "__main__":
    asyncio.run(main())
