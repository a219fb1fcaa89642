"""Which failures Temporal retries, decided once for every HTTP client the activities use.

Retries belong to Temporal's retry policies (they survive a worker crash and show in the UI). The
client libraries never re-send a write (`gitlab_api.py`, `jira_api.py`); a write whose outcome is
unknown goes to the write door (`write_door.py`), which looks for its effect before sending again.
`raise_transient` is the `requests` response hook the Jira client uses to turn 429 and 5xx into
`TransientHTTPError` before jira can loop on them, and `activity_errors` maps what leaves an
activity: 429/5xx/network → retryable (honouring Retry-After as the next retry delay); 400/401/403/
404/409/422 → non-retryable with a short, secret-free message.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import requests
from temporalio.exceptions import ApplicationError

from contracts.errors import PermanentError

MAX_RETRY_AFTER_S = 300
F = TypeVar("F", bound=Callable[..., Any])
__all__ = [
    "PermanentError",
    "TransientHTTPError",
    "activity_errors",
    "to_application_error",
]


class TransientHTTPError(Exception):
    def __init__(self, status: int, url: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status, self.url, self.retry_after = status, url, retry_after


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return None


def raise_transient(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """`requests` response hook: 429 and 5xx leave the client library as `TransientHTTPError`."""
    if response.status_code == 429 or response.status_code >= 500:
        path = requests.utils.urlparse(response.url).path
        raise TransientHTTPError(response.status_code, path, _retry_after(response))


def _status_of(exc: BaseException) -> int | None:
    for attr in ("response_code", "status_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    return None


def to_application_error(exc: BaseException) -> BaseException:
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, TransientHTTPError):
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
        return ApplicationError(str(exc), type="TransientHTTPError", next_retry_delay=delay)
    if isinstance(exc, PermanentError):
        return ApplicationError(str(exc), type=exc.kind, non_retryable=True)
    status = _status_of(exc)
    if status is not None and 400 <= status < 500 and status != 429:
        name = type(exc).__name__
        return ApplicationError(f"{name}: HTTP {status}", type=f"HTTP{status}", non_retryable=True)
    return exc  # network errors, timeouts, anything unknown: Temporal retries per the policy


def activity_errors(fn: F) -> F:
    """Decorator for activities (sync or async) applying `to_application_error`."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                converted = to_application_error(exc)
                if converted is exc:
                    raise  # `raise exc from exc` would make the cause chain a loop
                raise converted from exc

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            converted = to_application_error(exc)
            if converted is exc:
                raise  # `raise exc from exc` would make the cause chain a loop
            raise converted from exc

    return wrapper  # type: ignore[return-value]
