"""REVIEW_FORKS: fork MRs reviewed or not, checked by the worker itself and by the webhook."""

from __future__ import annotations

from activities.review import ReviewActivities
from contracts.models import MRInfo
from contracts.settings import Settings


def test_fork_merge_requests_are_skipped_when_review_forks_is_off():
    """The worker's own check (a manual start skips the webhook's): REVIEW_FORKS=false skips forks."""
    mr = MRInfo(
        project_id=7, mr_iid=1, title="t", state="opened", draft=False, head_sha="a" * 40, base_sha="b" * 40,
        start_sha="b" * 40, source_branch="f", target_branch="main", source_project_id=99,
        author_username="someone", web_url="http://x",
    )  # fmt: skip
    skip = ReviewActivities(Settings(_env_file=None, review_forks=False), executor=None).review_skip_reason
    assert skip(mr) == "merge request from a fork (REVIEW_FORKS=false)"
