"""Review delivery end to end: one notification, a truthful commit status, the receipt.

(Exactly once under lost replies and kills: tests/reliability/test_lost_replies.py and
test_fault_injection.py; the pure rules: tests/unit/test_review_delivery.py.)
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus

from contracts.ids import review_id
from contracts.models import ReviewMRInput, ReviewMRResult, Trigger
from core import markers
from devenv.stack import AGENT, DEVELOPER
from tests.flows.helpers import finding, finish, project_id, wait_workflow

pytestmark = pytest.mark.flow

APP = "group/app"
DIV = "def div(a, b):\n    return a / b\n"
BIG = "".join(f"VALUE_{n} = {n}\n" for n in range(80))  # more lines than the budget of 50


@pytest.fixture
def settings_overrides() -> dict:
    return {"review_max_diff_lines": 50, "review_status_fail_on_critical": True}


async def test_a_partial_review_with_a_critical_finding_is_one_notification_and_a_failed_status(stack):
    stack.gitlab.commit(APP, "feature", {"app/calc.py": DIV, "app/big.py": BIG}, "feat", author=DEVELOPER)
    mr = stack.gitlab.create_mr(APP, "feature", title="Add div", author=DEVELOPER)
    stack.model.brain.brain.when(
        finding("app/calc.py", 2, "Division by zero", severity="critical"),
        finish("Adds div."),
        tool_offered="reviewer-finish_review",
    )
    pid, sha = project_id(stack), stack.gitlab.mr_json(APP, mr.iid)["sha"]
    workflow_id = review_id(pid, mr.iid, sha)
    await stack.client.start_workflow(
        "ReviewMR",
        ReviewMRInput(project_id=pid, mr_iid=mr.iid, head_sha=sha, trigger=Trigger.WEBHOOK),
        id=workflow_id,
        task_queue=stack.settings.temporal_task_queue,
    )
    description = await wait_workflow(stack.client, workflow_id, timeout=120)
    assert description.status == WorkflowExecutionStatus.COMPLETED
    result = await stack.client.get_workflow_handle(workflow_id, result_type=ReviewMRResult).result()

    # One e-mail: the finding and the first summary went out as one review.
    assert [(n.kind, n.notes) for n in stack.gitlab.notifications(APP, mr.iid)] == [("review", 2)]
    (summary,) = [
        n
        for n in stack.gitlab.notes(APP, mr.iid)
        if n["author"]["username"] == AGENT and markers.parse(n["body"], markers.SUMMARY)
    ]
    assert summary["type"] is None and not summary["resolvable"]  # never a thread blocking a merge
    body = summary["body"]
    # app/big.py is over one run's budget: reviewed in part (its own bundle), and said so.
    assert "This review is incomplete" in body, body
    (row,) = [line for line in body.splitlines() if line.startswith("| `app/big.py`")]
    assert "partly reviewed" in row or "not reviewed" in row, row
    assert "Delivered (published as one review): 1 inline, 0 general" in body
    assert f"Workflow: `{workflow_id}`" in body
    # The status is failed twice over: a file was not reviewed, and the finding is critical.
    (status,) = stack.gitlab.commit_statuses(APP, sha)
    assert status["name"] == "copilot-review" and status["status"] == "failed"
    assert status["description"] == "1 finding, 1 critical · 1/2 files · partial review"
    assert status["target_url"] == result.posted.summary_url and result.posted.summary_url.endswith(
        f"#note_{summary['id']}"
    )
