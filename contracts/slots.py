"""The per-project agent slots' state and workflow ID, shared by workflows/agent_slots.py and its
activities (activities/slots.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import ConfigDict


@dataclass
class SlotsState:
    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    limit: int
    holders: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    daily_cap: int = 0  # 0: no cap
    max_waiting: int = 0  # 0: unbounded
    day: str = ""  # the UTC day `granted_today` counts
    granted_today: int = 0
    token_cap: int = 0  # model tokens per UTC day, 0: no cap
    tokens_today: int = 0  # tokens the runs released on `day` reported
    fork_cap: int = 0  # fork MR reviews per author per UTC day, 0: no cap
    fork_reviews_today: dict[str, int] = field(default_factory=dict)  # author -> granted on `day`


def slots_id(task_queue: str, project_id: int) -> str:
    # Per task queue too: two deployments sharing a namespace keep separate slots.
    return f"agent-slots:{task_queue}:{project_id}"
