"""Activities of ImplementIssue's plan gate: the plan-only agent run, the plan comment, reading the
decision from Jira (with the approver's authority re-checked here, where it is used), the reminder.

Who may decide (`PLAN_APPROVERS`): members of a Jira project role (`role:Developers`) or group
(`group:jira-leads`), looked up at the moment a decision comment is read; a comment by anyone
else is ignored (and listed in the decision, so the Web UI shows it was seen). The agent's own
comments never count, whatever they say. A label (`PLAN_APPROVE_LABEL`) or a status
(`PLAN_APPROVE_STATUS`) approves too: Jira's own edit and transition permissions guard those.
Only comments after the current round's plan comment count, so an `approve` given to an earlier
plan never approves a revised one.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from jira import JIRA, JIRAError
from temporalio import activity

from activities.heartbeat import heartbeating
from activities.http_errors import PermanentError, activity_errors
from activities.issue_target import issue_target
from activities.jira_api import IssueComment, jira_client, mapping_for, read_comments, read_issue, user_id
from activities.jira_writes import comment, comment_tag
from contracts.agent_tasks import PlanTask, RepoRef, tokens_used
from contracts.implement import MAX_PLAN_CHARS, PlanDecision, PlanPolicy, PlanRunInput, PlanRunResult
from contracts.reports import Plan
from contracts.settings import PlanApproval, Settings
from core.acceptance import acceptance_criteria
from core.sanitize import strip_unsafe
from executors.base import AgentExecutor
from telemetry.agent_run import run_agent

log = logging.getLogger(__name__)

_APPROVE = re.compile(r"^\s*(?:/)?approved?\s*[.!]?\s*$", re.IGNORECASE)
_CHANGES = re.compile(r"^\s*(?:/)?changes\s*:\s*(.*)$", re.IGNORECASE | re.DOTALL)


def parse_decision(text: str) -> tuple[str, str] | None:
    """("approve", "") or ("changes", feedback) from a comment whose first line says so; else None."""
    stripped = text.strip().strip("*_").strip()
    first, _, rest = stripped.partition("\n")
    if _APPROVE.match(first.strip("*_ ")):
        return "approve", ""
    changes = _CHANGES.match(stripped)
    if changes:
        return "changes", changes.group(1).strip()[:4000]
    return None


def plan_markdown(plan: Plan, round_: int) -> str:
    def listed(title: str, items: list[str]) -> list[str]:
        return [f"### {title}", *(f"- {strip_unsafe(i)}" for i in items), ""] if items else []

    lines = [
        f"## Implementation plan (round {round_})",
        "",
        strip_unsafe(plan.approach),
        "",
        *listed("Files", plan.files),
        *listed("Tests to add", plan.tests),
        *listed("Risks", plan.risks),
        *listed("Open questions", plan.open_questions),
    ]
    return "\n".join(lines).strip()[:MAX_PLAN_CHARS]


class PlanActivities:
    def __init__(self, settings: Settings, executor: AgentExecutor) -> None:
        self.settings = settings
        self.executor = executor

    @activity.defn(name="implement_plan_policy")
    @activity_errors
    def plan_policy(self, issue_key: str) -> PlanPolicy:
        s = self.settings
        timers = {
            "poll_s": s.plan_poll_interval,
            "reminder_s": s.plan_reminder_after,
            "expire_s": s.plan_expire_after,
            "max_rounds": s.plan_max_rounds,
            "polls_per_run": s.plan_polls_per_run,
            "how_to_approve": self._how_to_approve(),
        }
        if s.plan_approval is PlanApproval.OFF:
            return PlanPolicy(required=False, reason="PLAN_APPROVAL=off", **timers)
        if s.plan_approval is PlanApproval.AUTO_FOR_LABELS:
            labels = set(read_issue(jira_client(s), issue_key)["labels"])
            hit = sorted(labels & set(s.plan_auto_labels))
            if hit:
                return PlanPolicy(required=False, reason=f"label {hit[0]} (PLAN_AUTO_LABELS)", **timers)
        return PlanPolicy(required=True, reason=f"PLAN_APPROVAL={s.plan_approval.value}", **timers)

    def _how_to_approve(self) -> str:
        ways = [
            f"a comment `approve` (or `changes: <what to change>`) by {', '.join(self.settings.plan_approvers)}"
        ]
        if self.settings.plan_approve_label:
            ways.append(f"the label `{self.settings.plan_approve_label}`")
        if self.settings.plan_approve_status:
            ways.append(f"moving the issue to `{self.settings.plan_approve_status}`")
        return "; ".join(ways)[:1000]

    # --- the plan-only agent run ---------------------------------------------------------------------
    @activity.defn(name="implement_plan")
    @activity_errors
    async def run_plan(self, data: PlanRunInput) -> PlanRunResult:
        task = await asyncio.to_thread(self._task, data)
        info = activity.info()
        try:
            run_id = f"{data.workflow_id}-plan-{info.activity_id}"
            result = await heartbeating(run_agent(self.executor, task, run_id=run_id))
        except ValueError as exc:
            raise PermanentError(f"agent run refused: {exc}"[:500], kind="ConfigurationError") from exc
        plan = next((r for r in result.reports if isinstance(r, Plan)), None)
        if plan is None:
            raise PermanentError("the agent finished without proposing a plan", kind="AgentNoResult")
        return PlanRunResult(plan=plan_markdown(plan, data.round), tokens_used=tokens_used(result.usage))

    def _task(self, data: PlanRunInput) -> PlanTask:
        # Through the mapping's credential, like the implementation: the plan reads what it will change.
        mapping, project, target_sha = issue_target(self.settings, data.issue_key)
        issue = read_issue(jira_client(self.settings), data.issue_key)
        return PlanTask(
            repo=RepoRef(
                clone_url=project.http_url_to_repo,
                head_sha=target_sha,
                branches=[mapping.target_branch],
                credential=mapping.credential_ref,  # cloned with the project's token, as implemented
            ),
            project_path=project.path_with_namespace,
            issue_key=data.issue_key,
            summary=issue["summary"],
            description=issue["description"],
            criteria=acceptance_criteria(issue["description"]),
            previous_plan=data.previous_plan,
            feedback=data.feedback,
            **self.settings.run_options_for(project.path_with_namespace, project.id),
        )

    # --- Jira comments ---------------------------------------------------------------------------------
    @activity.defn(name="implement_post_plan")
    @activity_errors
    def post_plan(self, issue_key: str, run_id: str, round_: int, plan: str, workflow_id: str) -> bool:
        text = (
            f"{plan}\n\n"
            f"**The Copilot agent waits for a decision before writing code.** Approve with "
            f"{self._how_to_approve()}. Workflow: `{workflow_id}`."
        )
        return comment(jira_client(self.settings), issue_key, text, comment_tag("plan", f"{run_id}:{round_}"))

    @activity.defn(name="implement_plan_reminder")
    @activity_errors
    def plan_reminder(self, issue_key: str, run_id: str, round_: int, waiting_since: str) -> bool:
        text = (
            f"Reminder: the Copilot agent's plan (round {round_}) has been waiting for a decision since "
            f"{waiting_since}. Approve with {self._how_to_approve()}."
        )
        tag = comment_tag("plan-reminder", f"{run_id}:{round_}")
        return comment(jira_client(self.settings), issue_key, text, tag)

    @activity.defn(name="implement_plan_decision")
    @activity_errors
    def plan_decision(self, issue_key: str, run_id: str, round_: int) -> PlanDecision:
        client = jira_client(self.settings)
        project, _ = mapping_for(self.settings, issue_key)
        issue = read_issue(client, issue_key)
        label, status = self.settings.plan_approve_label, self.settings.plan_approve_status
        if label and label in issue["labels"]:
            return PlanDecision(kind="approve", by=f"label {label}", via="label")
        if status and issue["status"].casefold() == status.casefold():
            return PlanDecision(kind="approve", by=f"status {status}", via="status")
        comments = read_comments(client, issue_key)
        me = _me(client)
        tag = comment_tag("plan", f"{run_id}:{round_}")
        start = next((i for i, c in enumerate(comments) if c.author == me and tag in c.text), None)
        if start is None:
            return PlanDecision(kind="none")  # the plan comment is not visible yet
        ignored: list[str] = []
        approvers = _Approvers(client, project, self.settings.plan_approvers)
        for later in comments[start + 1 :]:
            if later.author == me:
                continue
            parsed = parse_decision(later.text)
            if parsed is None:
                continue
            if not approvers.allows(later):
                ignored.append(
                    f"{later.author_name}: may not approve ({', '.join(self.settings.plan_approvers)})"[:200]
                )
                continue
            kind, feedback = parsed
            return PlanDecision(
                kind=kind, by=later.author_name[:200], via="comment", feedback=feedback, ignored=ignored[:20]
            )  # type: ignore[arg-type]
        return PlanDecision(kind="none", ignored=ignored[:20])


def _me(client: JIRA) -> str:
    return user_id(client.myself())


class _Approvers:
    """Membership of the configured roles and groups, read once per decision check."""

    def __init__(self, client: JIRA, project: str, specs: list[str]) -> None:
        self.client, self.project, self.specs = client, project, specs
        self._members: set[str] | None = None

    def _load(self) -> set[str]:
        members: set[str] = set()
        roles: dict[str, Any] | None = None
        for spec in self.specs:
            kind, _, name = spec.partition(":")
            kind, name = kind.strip().lower(), name.strip()
            try:
                if kind == "role":
                    roles = roles if roles is not None else self.client.project_roles(self.project)
                    found = next((v for k, v in roles.items() if k.casefold() == name.casefold()), None)
                    if found is None:
                        continue
                    role = self.client._get_json(f"project/{self.project}/role/{found['id']}")
                    for actor in role.get("actors") or []:
                        members.add(user_id(actor.get("actorUser")) or str(actor.get("name") or ""))
                elif kind == "group":
                    for key, user in self.client.group_members(name).items():
                        members.add(str(user.get("accountId") or user.get("name") or key))
            except JIRAError as exc:
                if exc.status_code != 404:
                    raise
                log.warning("plan approvers: %s not found in Jira", spec)
        members.discard("")
        return members

    def allows(self, comment_: IssueComment) -> bool:
        if self._members is None:
            self._members = self._load()
        return comment_.author in self._members
