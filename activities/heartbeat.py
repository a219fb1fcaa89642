"""Awaiting a long run inside an async activity while heartbeating."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from temporalio import activity

HEARTBEAT_EVERY = timedelta(seconds=5)
T = TypeVar("T")


async def heartbeating(awaitable: Awaitable[T], every: timedelta = HEARTBEAT_EVERY) -> T:
    """Await `awaitable` while heartbeating, so a dead worker is noticed within the heartbeat timeout
    and a cancelled workflow cancels the run (heartbeats are how activities learn of cancellation)."""
    task = asyncio.ensure_future(awaitable)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every.total_seconds())
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
