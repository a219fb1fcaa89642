"""Which failures Temporal retries: one classification for every HTTP client."""

from __future__ import annotations

from datetime import timedelta

import gitlab
import pytest
import requests
from temporalio.exceptions import ApplicationError

from activities.http_errors import (
    PermanentError,
    TransientHTTPError,
    activity_errors,
    raise_transient,
    to_application_error,
)


def response(status: int, retry_after: str | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.url = "http://gitlab.example/api/v4/projects/1?private_token=secret"
    if retry_after is not None:
        r.headers["Retry-After"] = retry_after
    return r


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_429_and_5xx_leave_the_client_library_as_transient(status):
    with pytest.raises(TransientHTTPError) as err:
        raise_transient(response(status, "7"))
    assert err.value.retry_after == 7 and "secret" not in str(err.value)


@pytest.mark.parametrize("status", [200, 201, 400, 401, 403, 404, 409, 422])
def test_other_statuses_pass_through_the_hook(status):
    raise_transient(response(status))


def test_retry_after_is_honoured_and_capped():
    error = to_application_error(TransientHTTPError(429, "/x", 7))
    assert isinstance(error, ApplicationError) and not error.non_retryable
    assert error.next_retry_delay == timedelta(seconds=7)
    assert to_application_error(TransientHTTPError(429, "/x", None)).next_retry_delay is None


@pytest.mark.parametrize("value", ["99999", "-3", "soon", ""])
def test_odd_retry_after_values(value):
    with pytest.raises(TransientHTTPError) as err:
        raise_transient(response(503, value))
    assert err.value.retry_after is None or 0 <= err.value.retry_after <= 300


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_not_retried(status):
    error = to_application_error(gitlab.GitlabHttpError("nope", response_code=status))
    assert isinstance(error, ApplicationError) and error.non_retryable and error.type == f"HTTP{status}"


def test_network_errors_and_unknowns_are_retried_by_the_policy():
    assert isinstance(to_application_error(requests.ConnectionError("down")), requests.ConnectionError)
    assert to_application_error(PermanentError("bad", kind="ConfigurationError")).non_retryable


async def test_decorator_wraps_sync_and_async():
    @activity_errors
    def sync():
        raise gitlab.GitlabHttpError("x", response_code=404)

    @activity_errors
    async def coro():
        raise TransientHTTPError(502, "/y", None)

    with pytest.raises(ApplicationError, match="HTTP 404"):
        sync()
    with pytest.raises(ApplicationError) as err:
        await coro()
    assert not err.value.non_retryable
