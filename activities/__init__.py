"""All I/O of the service. Every activity the worker runs is listed in `build_activities`."""

from collections.abc import Callable

from activities.diagnose import DiagnoseActivities
from activities.review import ReviewActivities
from contracts.settings import Settings
from executors.base import make_executor


def build_activities(settings: Settings) -> list[Callable]:
    executor = make_executor(settings)
    diagnose = DiagnoseActivities(settings)
    review = ReviewActivities(settings, executor)
    return [
        diagnose.diagnose_worker,
        review.fetch_mr,
        review.review_skip_reason,
        review.set_review_reaction,
        review.cancel_older_reviews,
        review.run_review,
        review.post_review,
        review.post_review_failure,
    ]
