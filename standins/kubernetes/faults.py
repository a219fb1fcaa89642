"""Faults a test can inject into the Jobs it is about to create, to see the executor cope with them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from standins.kubernetes.meta import Requirement, parse_label_selector
from standins.kubernetes.status import ApiError


class Fault(StrEnum):
    IMAGE_PULL_ERROR = "image_pull_error"
    """The first container to start never does: waiting ErrImagePull, then ImagePullBackOff."""
    OOM_KILLED = "oom_killed"
    """The first app container is reported terminated, reason OOMKilled, exit 137, without running."""
    UNSCHEDULABLE = "unschedulable"
    """The pod stays Pending with PodScheduled False/Unschedulable; no container is created."""
    DEADLINE_EXCEEDED = "deadline_exceeded"
    """The Job fails with DeadlineExceeded as soon as it starts, as if activeDeadlineSeconds elapsed."""


UNSCHEDULABLE_MESSAGE = "0/1 nodes are available: insufficient memory."


@dataclass(frozen=True)
class FaultRule:
    """A fault for every Job whose name starts with `prefix`, or whose labels match `selector`."""

    fault: Fault
    prefix: str | None
    selector: tuple[Requirement, ...]

    @classmethod
    def parse(cls, target: str, fault: Fault | str) -> FaultRule:
        """`target` containing "=" is a label selector (`app=agent`), otherwise a Job-name prefix.

        Raises ValueError for an unknown fault, an empty target or a malformed selector.
        """
        try:
            kind = Fault(fault)
        except ValueError:
            raise ValueError(f"unknown fault {fault!r}; choose one of {[f.value for f in Fault]}") from None
        if not isinstance(target, str) or not target.strip():
            raise ValueError("fault target must be a Job-name prefix or a label selector")
        if "=" not in target:
            return cls(kind, target, ())
        try:
            return cls(kind, None, tuple(parse_label_selector(target)))
        except ApiError as error:
            raise ValueError(error.message) from None

    def matches(self, job: Mapping[str, Any]) -> bool:
        metadata = job["metadata"]
        if self.prefix is not None:
            return str(metadata["name"]).startswith(self.prefix)
        labels = metadata.get("labels") or {}
        return all(requirement.matches(labels) for requirement in self.selector)
