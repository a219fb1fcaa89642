"""The GitLab poller's backoff delay after failed polls (workflows/poll_gitlab.py), the seed's rule:
doubled per failure in a row, at most 300 s, never shorter than the Schedule's interval."""

from datetime import timedelta

import pytest

from workflows.poll_gitlab import backoff_delay


@pytest.mark.parametrize(
    ("failures", "interval_s", "seconds"),
    [
        (0, 30, 0),
        (1, 30, 60),
        (2, 30, 120),
        (3, 30, 240),
        (4, 30, 300),
        (60, 30, 300),
        (1, 600, 600),
        (1, 10, 20),
    ],
)
def test_the_delay_doubles_per_failure_up_to_300_s(failures, interval_s, seconds):
    assert backoff_delay(failures, interval_s) == timedelta(seconds=seconds)
