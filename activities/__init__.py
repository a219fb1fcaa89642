"""All I/O of the service. Every activity the worker runs is listed in `build_activities`."""

from collections.abc import Callable

from activities.diagnose import DiagnoseActivities
from activities.discussion import DiscussionActivities
from activities.implement import ImplementActivities
from activities.plan_approval import PlanActivities
from activities.polling import PollingActivities
from activities.review import ReviewActivities
from activities.review_ledger import LedgerActivities
from activities.review_loop import ReviewLoopActivities
from activities.slots import SlotActivities
from contracts.settings import Settings
from executors.base import make_executor


def build_activities(settings: Settings) -> list[Callable]:
    executor = make_executor(settings)
    diagnose = DiagnoseActivities(settings)
    review = ReviewActivities(settings, executor)
    discussion = DiscussionActivities(settings, executor)
    implement = ImplementActivities(settings, executor)
    plan = PlanActivities(settings, executor)
    loop = ReviewLoopActivities(settings, executor)
    polling = PollingActivities(settings)
    slots = SlotActivities(settings)
    ledger = LedgerActivities(settings)
    return [
        diagnose.diagnose_worker,
        review.fetch_mr,
        review.review_skip_reason,
        review.set_review_reaction,
        review.cancel_older_reviews,
        review.prepare_review,
        review.run_review,
        review.post_review,
        review.post_review_failure,
        review.post_review_limit_notice,
        review.set_review_status,
        ledger.project_learnings,
        ledger.record_learnings,
        discussion.discussion_context,
        discussion.set_note_reaction,
        discussion.run_discussion,
        discussion.post_discussion_reply,
        discussion.admit_discussion,
        discussion.post_limit_notice,
        implement.issue_info,
        implement.trigger_status,
        implement.transition,
        implement.implement_change,
        implement.open_mr,
        implement.comment_mr,
        implement.report_failure,
        plan.plan_policy,
        plan.run_plan,
        plan.post_plan,
        plan.plan_reminder,
        plan.plan_decision,
        loop.loop_policy,
        loop.review_findings,
        loop.answer_findings,
        loop.finish_loop,
        polling.poll_jira,
        polling.poll_gitlab,
        slots.request_slot,
        slots.running_workflows,
    ]
