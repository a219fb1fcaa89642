"""Injected failures: the next N matching requests, or a seeded random share of all requests.

A faulted request is answered before authentication and before any state change, like a proxy or
rate limiter in front of Jira, so a retry after a fault is always safe to count on.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: int | None = None


@dataclass
class _Planned:
    remaining: int
    fault: Fault
    method: str | None
    path_contains: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path
        )


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: list[_Planned] = []
        self._rate = 0.0
        self._statuses: tuple[int, ...] = ()
        self._random = random.Random(0)

    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: int | None = None,
        *,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Fail the next `n` requests (optionally only those with `method` / a path containing a string)."""
        if n < 1 or not 400 <= status <= 599:
            raise ValueError("fail_next needs n >= 1 and a 4xx/5xx status")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must be >= 0 seconds")
        with self._lock:
            self._planned.append(
                _Planned(n, Fault(status, retry_after), method.upper() if method else None, path_contains)
            )

    def inject_faults(self, rate: float, statuses: Sequence[int] = (500, 503), seed: int = 0) -> None:
        """Fail a `rate` share of requests with a status drawn from `statuses`, reproducibly per `seed`."""
        if not 0.0 <= rate <= 1.0 or not statuses or any(not 400 <= s <= 599 for s in statuses):
            raise ValueError("inject_faults needs 0 <= rate <= 1 and 4xx/5xx statuses")
        with self._lock:
            self._rate = rate
            self._statuses = tuple(statuses)
            self._random = random.Random(seed)

    def clear_faults(self) -> None:
        with self._lock:
            self._planned.clear()
            self._rate = 0.0

    def pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for planned in self._planned:
                if planned.matches(method, path):
                    planned.remaining -= 1
                    if planned.remaining == 0:
                        self._planned.remove(planned)
                    return planned.fault
            if self._rate and self._random.random() < self._rate:
                return Fault(self._random.choice(self._statuses))
            return None
