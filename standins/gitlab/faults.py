"""Fault injection for REST requests: random failures, scripted failures, stalls, and lost replies.

A failure is answered before the request is processed, like a rate limiter in front of GitLab. A
lost reply is what a proxy timeout, a load balancer's 502 or a dropped connection does: GitLab
processed the request (the note exists), and the client sees a 429/5xx or a reset instead of the
answer. `lose_reply` with a status answers that status after the effect; without one the
connection is closed with no answer at all.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass
class Fault:
    status: int | None  # None: no failure, only a stall (or, with lose_reply, a dropped connection)
    retry_after: int | None = None
    stall_s: float = 0.0
    lose_reply: bool = False  # processed first, then the answer is `status` (or nothing)

    @property
    def kind(self) -> str:
        if self.lose_reply:
            return f"lost reply {self.status or 'reset'}"
        return "stall" if self.status is None else str(self.status)


@dataclass
class _Scripted:
    remaining: int
    fault: Fault
    path_contains: str | None
    method: str | None = None


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rate = 0.0
        self._statuses: tuple[int, ...] = ()
        self._retry_after: int | None = None
        self._rng = random.Random(0)
        self._scripted: list[_Scripted] = []
        self._lost_share = 0.0

    def inject(
        self,
        rate: float,
        statuses: tuple[int, ...],
        retry_after: int | None,
        seed: int | None,
        lost_share: float = 0.0,
    ) -> None:
        """Fail a `rate` share of requests; `lost_share` of those faults come after the effect (the
        reply is lost: one of `statuses`, or a dropped connection)."""
        if not 0.0 <= rate <= 1.0 or not 0.0 <= lost_share <= 1.0:
            raise ValueError("rate and lost_share must be within [0, 1]")
        if rate and not statuses:
            raise ValueError("statuses must not be empty")
        with self._lock:
            self._rate, self._statuses, self._retry_after = rate, tuple(statuses), retry_after
            self._lost_share = lost_share
            self._rng = random.Random(seed)

    def script(self, n: int, fault: Fault, path_contains: str | None, method: str | None = None) -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        with self._lock:
            self._scripted.append(_Scripted(n, fault, path_contains, method.upper() if method else None))

    def clear(self) -> None:
        with self._lock:
            self._rate, self._scripted = 0.0, []

    def next_fault(self, path: str, method: str = "GET", *, targeted_only: bool = False) -> Fault | None:
        """The scripted fault for this request, else maybe a random one. `targeted_only` (git
        requests): only a scripted fault whose `path_contains` names this path."""
        with self._lock:
            for entry in self._scripted:
                if entry.method is not None and entry.method != method:
                    continue
                if targeted_only and entry.path_contains is None:
                    continue
                if entry.path_contains is None or entry.path_contains in path:
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        self._scripted.remove(entry)
                    return entry.fault
            if not targeted_only and self._rate and self._rng.random() < self._rate:
                if self._lost_share and self._rng.random() < self._lost_share:
                    status = self._rng.choice((*self._statuses, None))  # None: the connection drops
                    return Fault(status, self._retry_after if status else None, lose_reply=True)
                return Fault(self._rng.choice(self._statuses), self._retry_after)
        return None
