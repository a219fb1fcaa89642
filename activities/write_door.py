"""What the GitLab and the Jira doors share: send a write once, and after an ambiguous failure look
for its effect before sending it again.

A write whose reply was lost (a 429 or 5xx from a proxy, a reset connection, a read timeout after
the request went out) may have taken effect. Re-sending it blindly is how a review posts the same
thread twice, so no client library re-sends a write (see `gitlab_api.py`, `jira_api.py`), and each
write is a pair: `send` does it, `find` looks for its marker (or its state: a resolved thread, an
award, a status) and returns what it finds. After an ambiguous failure the door calls `find` first
and adopts what it returns; only when nothing is there does it send again, a bounded number of
times. What still fails leaves the activity for Temporal's retry policy, whose next attempt checks
at the activity level first as well.

Failures that are certain (400, 403, 404, 409, 422: GitLab refused it) are raised at once, so
callers keep their own handling (a rejected inline position becomes a general comment).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import requests

from activities.http_errors import MAX_RETRY_AFTER_S, TransientHTTPError

log = logging.getLogger(__name__)
T = TypeVar("T")

SEND_ATTEMPTS = 3  # sends per activity attempt; then Temporal's policy
WAIT_S = 0.3  # before looking again; doubled each time
MAX_WAIT_S = 2.0  # a longer Retry-After is left to Temporal (next_retry_delay)

_inside = contextvars.ContextVar("inside_write_door", default=False)


class WriteOutsideDoor(RuntimeError):
    """A non-idempotent request was about to be sent by code that is not one of the doors."""


def inside_door() -> bool:
    return _inside.get()


@contextlib.contextmanager
def _open() -> Iterator[None]:
    token = _inside.set(True)
    try:
        yield
    finally:
        _inside.reset(token)


def _status(exc: BaseException) -> int | None:
    for attr in ("response_code", "status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def outcome_unknown(exc: BaseException) -> bool:
    """True when the write may or may not have happened: 429, 5xx, a reset or a timeout."""
    if isinstance(
        exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    ):
        return True
    if isinstance(exc, TransientHTTPError):
        return True
    status = _status(exc)
    return status is not None and (status == 429 or status >= 500)


def _retry_after(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    if isinstance(value, (int, float)):
        return float(value)
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        return min(max(float(headers.get("Retry-After", "")), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return None


def write_once(
    what: str, send: Callable[[], T], find: Callable[[], T | None], *, check_first: bool = False
) -> T:
    """`send()` once; after an ambiguous failure adopt `find()`'s result, or send again (bounded).

    `find` runs outside the door (reads only) and returns None when the write has not happened.
    `check_first` looks before the first send too, for writes whose callers have not just read the
    state themselves.
    """
    if check_first and (found := find()) is not None:
        return found
    wait = WAIT_S
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            with _open():
                return send()
        except Exception as exc:
            if not outcome_unknown(exc):
                raise
            retry_after = _retry_after(exc)
            give_up = attempt == SEND_ATTEMPTS or (retry_after or 0.0) > MAX_WAIT_S
            if not give_up:
                time.sleep(retry_after if retry_after is not None else wait)
                wait = min(wait * 2, MAX_WAIT_S)
            found = find()
            if found is not None:
                log.info("%s: the reply was lost but the write had taken effect; adopted it", what)
                return found
            if give_up:
                raise TransientHTTPError(_status(exc) or 503, what, retry_after) from exc
            log.info("%s: failed without effect (%s); sending again", what, type(exc).__name__)
    raise AssertionError("unreachable")
