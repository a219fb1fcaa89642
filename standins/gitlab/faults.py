"""Fault injection for REST requests: random failures, scripted failures and stalls."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass
class Fault:
    status: int | None  # None: no failure, only a stall
    retry_after: int | None = None
    stall_s: float = 0.0


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

    def inject(
        self, rate: float, statuses: tuple[int, ...], retry_after: int | None, seed: int | None
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        if rate and not statuses:
            raise ValueError("statuses must not be empty")
        with self._lock:
            self._rate, self._statuses, self._retry_after = rate, tuple(statuses), retry_after
            self._rng = random.Random(seed)

    def script(self, n: int, fault: Fault, path_contains: str | None, method: str | None = None) -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        with self._lock:
            self._scripted.append(_Scripted(n, fault, path_contains, method.upper() if method else None))

    def clear(self) -> None:
        with self._lock:
            self._rate, self._scripted = 0.0, []

    def next_fault(self, path: str, method: str = "GET") -> Fault | None:
        with self._lock:
            for entry in self._scripted:
                if entry.method is not None and entry.method != method:
                    continue
                if entry.path_contains is None or entry.path_contains in path:
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        self._scripted.remove(entry)
                    return entry.fault
            if self._rate and self._rng.random() < self._rate:
                return Fault(self._rng.choice(self._statuses), self._retry_after)
        return None
