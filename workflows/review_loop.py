"""The reviewer ↔ implementer loop of ImplementIssue on its own draft MR.

    review (ReviewMR child) → open blocking findings? → fix round (implementer answers each:
    fix commit or reasoned dismissal) → review the new head → ... up to IMPLEMENT_REVIEW_ROUNDS
    fix rounds → ready (only if allowed, clean and tests passing) or draft with a status note.

ReviewMR runs as a child like any other review of the MR (its own ID `review:<p>:<iid>:<sha>:implement`,
trigger `implement`, its search attributes), so its publication and fan-out are whatever ReviewMR
does; this loop reads the open threads from GitLab afterwards, not ReviewMR's internals. Agent-authored
MRs get the stricter policy: findings from IMPLEMENT_BLOCKING_SEVERITY up (default minor) block
readiness. Every fix round is an agent run: it takes the project's slot and counts against its budget.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.review_loop import ReviewLoopActivities
    from contracts.agent_tasks import TestEvidence
    from contracts.ids import review_id
    from contracts.implement import (
        FindingReply,
        FixRoundInput,
        FixRoundResult,
        LoopOutcome,
        LoopPolicy,
        LoopResult,
        ReviewFindings,
    )
    from contracts.models import ReviewMRInput, ReviewMRResult, Trigger
    from contracts.temporal import agent_task_queue, review_search_attributes
    from core.mr_description import evidence_line, evidence_verdict
    from workflows.retries import agent_retry, service_retry

CALL = timedelta(minutes=2)
FIX_RUN = timedelta(minutes=60)
FIX_HEARTBEAT = timedelta(seconds=15)
GITLAB_RETRY = service_retry("ConfigurationError", "NotMapped")
FIX_RETRY = agent_retry(3, "ConfigurationError", "NotMapped", "ChangeTooLarge")


class LoopFigures:
    def __init__(self) -> None:
        self.reviews = 0
        self.rounds = 0
        self.result: LoopResult | None = None


async def review_loop(
    owner: Any, key: str, project_id: int, mr_iid: int, head: str, tests: TestEvidence | None, step: Any
) -> LoopFigures:
    figures = LoopFigures()
    policy: LoopPolicy = await _call(ReviewLoopActivities.loop_policy)
    if policy.rounds == 0:
        return figures
    info = workflow.info()
    replies: list[FindingReply] = []
    harness = list(tests.harness_reset) if tests is not None else []
    failed = ""
    findings: ReviewFindings | None = None
    while True:
        step(f"review {figures.reviews + 1} of the agent's MR", review_round=figures.rounds)
        try:
            review: ReviewMRResult = await workflow.execute_child_workflow(
                "ReviewMR",
                ReviewMRInput(project_id=project_id, mr_iid=mr_iid, head_sha=head, trigger=Trigger.IMPLEMENT),
                id=f"{review_id(project_id, mr_iid, head)}:implement",
                result_type=ReviewMRResult,
                task_queue=info.task_queue,
                search_attributes=review_search_attributes(project_id, mr_iid, head, Trigger.IMPLEMENT.value),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            figures.reviews += 1
            if review.status not in ("posted", "skipped"):
                failed = f"review {review.status}: {review.reason}"[:300]
                break
        except ChildWorkflowError as err:
            figures.reviews += 1
            failed = str(err.cause or err)[:300]
            break
        findings = await _call(
            ReviewLoopActivities.review_findings, project_id, mr_iid, policy.blocking_severity
        )
        head = findings.head_sha
        if not findings.blocking or figures.rounds >= policy.rounds:
            break
        figures.rounds += 1
        step(f"fix round {figures.rounds}: {len(findings.blocking)} finding(s)", review_round=figures.rounds)
        async with owner.agent_slot(project_id) as lease:
            fix: FixRoundResult = await workflow.execute_activity_method(
                ReviewLoopActivities.answer_findings,
                FixRoundInput(
                    issue_key=key,
                    workflow_id=info.workflow_id,
                    run_id=info.run_id,
                    project_id=project_id,
                    mr_iid=mr_iid,
                    head_sha=head,
                    round=figures.rounds,
                    findings=findings.blocking,
                ),
                task_queue=agent_task_queue(info.task_queue),
                start_to_close_timeout=FIX_RUN,
                heartbeat_timeout=FIX_HEARTBEAT,
                retry_policy=FIX_RETRY,
            )
            lease.tokens = fix.tokens_used
        replies = [*replies, *fix.replies][-100:]
        if fix.tests is not None:
            tests = fix.tests
            harness = sorted({*harness, *fix.tests.harness_reset})[:50]
        if fix.head_sha == head:
            # No new commit: another review of the same head would say the same. What the round
            # answered (dismissals) is read back from the threads.
            findings = await _call(
                ReviewLoopActivities.review_findings, project_id, mr_iid, policy.blocking_severity
            )
            break
        head = fix.head_sha
    blocking = [f.title for f in findings.blocking] if findings is not None else []
    step("deciding readiness", review_round=figures.rounds)
    figures.result = await _call(
        ReviewLoopActivities.finish_loop,
        LoopOutcome(
            issue_key=key,
            workflow_id=info.workflow_id,
            project_id=project_id,
            mr_iid=mr_iid,
            head_sha=head,
            rounds=figures.rounds,
            reviews=figures.reviews,
            tests_passing=evidence_verdict(tests) == "passing",
            tests_line=evidence_line(tests),
            blocking=blocking,
            replies=replies,
            review_failed=failed,
            may_mark_ready=policy.may_mark_ready,
            harness_edited=harness,
        ),
    )
    return figures


async def _call(method: Any, *args: Any) -> Any:
    return await workflow.execute_activity_method(
        method, args=list(args), start_to_close_timeout=CALL, retry_policy=GITLAB_RETRY
    )
