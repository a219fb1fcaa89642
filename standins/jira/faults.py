"""Injected failures: the next N matching requests, or a seeded random share of all requests.

A failure is answered before authentication and before any state change, like a rate limiter in
front of Jira. A lost reply (`lose_reply`) comes after the request took effect, like a proxy timeout
or a dropped connection: the client sees `status`, or a closed connection when it is None, although
the comment was added or the issue moved.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    status: int | None  # None only with lose_reply: the connection is closed with no answer
    retry_after: int | None = None
    lose_reply: bool = False

    @property
    def kind(self) -> str:
        return f"lost reply {self.status or 'reset'}" if self.lose_reply else str(self.status)


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
        self._lost_share = 0.0

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

    def lose_next(
        self, n: int, status: int | None = 502, *, method: str | None = None, path_contains: str | None = None
    ) -> None:
        """Process the next `n` matching requests, then answer `status` (None: close the connection)."""
        if n < 1 or (status is not None and not 400 <= status <= 599):
            raise ValueError("lose_next needs n >= 1 and a 4xx/5xx status or None")
        with self._lock:
            self._planned.append(
                _Planned(n, Fault(status, lose_reply=True), method.upper() if method else None, path_contains)
            )

    def inject_faults(
        self, rate: float, statuses: Sequence[int] = (500, 503), seed: int = 0, lost_share: float = 0.0
    ) -> None:
        """Fail a `rate` share of requests with a status drawn from `statuses`, reproducibly per `seed`;
        `lost_share` of those faults come after the effect (a status or a closed connection)."""
        if not 0.0 <= rate <= 1.0 or not statuses or any(not 400 <= s <= 599 for s in statuses):
            raise ValueError("inject_faults needs 0 <= rate <= 1 and 4xx/5xx statuses")
        if not 0.0 <= lost_share <= 1.0:
            raise ValueError("lost_share must be within [0, 1]")
        with self._lock:
            self._rate = rate
            self._statuses = tuple(statuses)
            self._random = random.Random(seed)
            self._lost_share = lost_share

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
                if self._lost_share and self._random.random() < self._lost_share:
                    return Fault(self._random.choice((*self._statuses, None)), lose_reply=True)
                return Fault(self._random.choice(self._statuses))
            return None
