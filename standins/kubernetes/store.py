"""The stand-in's object store: Jobs, Pods and Secrets, resourceVersions and the watch history.

One condition variable guards everything; watchers wait on it and the writers notify it. Objects are
plain JSON dicts (exactly what the API serves), and every read hands out a deep copy, so nothing a
caller does to a returned object can change the store.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from standins.kubernetes.meta import Requirement, now, selected
from standins.kubernetes.status import already_exists

WATCHED = ("jobs", "pods")
HISTORY_LIMIT = 10_000


@dataclass(frozen=True)
class WatchEvent:
    resource_version: int
    resource: str
    type: str  # ADDED | MODIFIED | DELETED
    object: dict[str, Any]


@dataclass(frozen=True)
class ClusterEvent:
    """What the cluster did, for tests to assert on (a Kubernetes Event, minus the API object)."""

    time: str
    kind: str  # Job | Pod
    namespace: str
    name: str
    reason: str  # SuccessfulCreate, Completed, BackoffLimitExceeded, DeadlineExceeded, Killing, ...
    message: str


class Store:
    def __init__(self) -> None:
        self.condition = threading.Condition(threading.RLock())
        self.closed = False
        self._resource_version = 0
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {name: {} for name in WATCHED}
        self._secrets: dict[tuple[str, str], dict[str, bytes]] = {}
        self._history: deque[WatchEvent] = deque(maxlen=HISTORY_LIMIT)
        self.events: list[ClusterEvent] = []
        self.jobs_created: list[str] = []

    @property
    def resource_version(self) -> int:
        return self._resource_version

    def _record(self, resource: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        self._resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self._resource_version)
        snapshot = copy.deepcopy(obj)
        self._history.append(WatchEvent(self._resource_version, resource, kind, snapshot))
        self.condition.notify_all()
        return copy.deepcopy(snapshot)

    def create(self, resource: str, obj: dict[str, Any], group: str) -> dict[str, Any]:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        with self.condition:
            if key in self._objects[resource]:
                raise already_exists(resource, group, key[1])
            self._objects[resource][key] = obj
            if resource == "jobs":
                self.jobs_created.append(f"{key[0]}/{key[1]}")
            return self._record(resource, "ADDED", obj)

    def update(
        self,
        resource: str,
        namespace: str,
        name: str,
        mutate: Callable[[dict[str, Any]], None],
        uid: str | None = None,
    ) -> dict[str, Any] | None:
        """Apply `mutate` in place and publish MODIFIED; None when the object (of that uid) is gone."""
        with self.condition:
            obj = self._objects[resource].get((namespace, name))
            if obj is None or (uid is not None and obj["metadata"].get("uid") != uid):
                return None
            mutate(obj)
            return self._record(resource, "MODIFIED", obj)

    def delete(
        self, resource: str, namespace: str, name: str, uid: str | None = None
    ) -> dict[str, Any] | None:
        with self.condition:
            obj = self._objects[resource].get((namespace, name))
            if obj is None or (uid is not None and obj["metadata"].get("uid") != uid):
                return None
            del self._objects[resource][(namespace, name)]
            return self._record(resource, "DELETED", obj)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.condition:
            obj = self._objects[resource].get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        resource: str,
        namespace: str | None,
        labels: Sequence[Requirement] = (),
        fields: Mapping[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        with self.condition:
            items = [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(self._objects[resource].items())
                if (namespace is None or ns == namespace) and selected(obj, labels, fields or {})
            ]
            return items, self._resource_version

    def history_after(self, resource: str, resource_version: int) -> list[WatchEvent] | None:
        """Events newer than `resource_version`; None when they have already been dropped (410 Gone)."""
        with self.condition:
            if self._history and self._history[0].resource_version > resource_version + 1:
                if len(self._history) == HISTORY_LIMIT:
                    return None
            return [
                event
                for event in self._history
                if event.resource_version > resource_version and event.resource == resource
            ]

    def put_secret(self, namespace: str, name: str, data: Mapping[str, bytes]) -> None:
        with self.condition:
            self._secrets[(namespace, name)] = dict(data)
            self.condition.notify_all()

    def secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        with self.condition:
            data = self._secrets.get((namespace, name))
            return dict(data) if data is not None else None

    def secret_names(self, namespace: str) -> list[str]:
        with self.condition:
            return sorted(name for ns, name in self._secrets if ns == namespace)

    def note(self, kind: str, namespace: str, name: str, reason: str, message: str) -> None:
        with self.condition:
            self.events.append(ClusterEvent(now(), kind, namespace, name, reason, message))

    def close(self) -> None:
        with self.condition:
            self.closed = True
            self.condition.notify_all()
