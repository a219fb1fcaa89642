"""Activities of ReviewMR: read the MR, run the reviewer, post what it found.

Every write is idempotent: notes carry hidden markers (core/markers.py), each writing activity
reads the MR's discussions first and skips what its earlier attempt already wrote, and every write
goes through the write door (gitlab_writes.py), which adopts a write whose reply was lost instead of
sending it again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import gitlab
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus

from activities.authority import check_served
from activities.gitlab_api import gitlab_client, mr_repo_ref
from activities.gitlab_writes import GitLabWrites
from activities.heartbeat import heartbeating
from activities.http_errors import PermanentError, TransientHTTPError, activity_errors
from contracts.agent_tasks import tokens_used
from contracts.models import (
    Finding,
    MRInfo,
    PostReviewInput,
    PostReviewResult,
    Resolution,
    ReviewPrep,
    ReviewRunInput,
    ReviewRunResult,
)
from contracts.settings import Settings
from core import markers
from core.outbound_text import model_text
from core.review_memory import ReviewMemory, dismissal_authors, read_memory
from core.review_post import plan_findings, render_finding, render_summary
from executors.base import AgentExecutor
from executors.report_tool import Finding as ReportedFinding
from executors.report_tool import FinishReview
from executors.report_tool import Resolution as ReportedResolution
from executors.tasks import DismissedThread, PriorThread, ReviewTask
from telemetry import metrics
from telemetry.agent_run import run_agent

log = logging.getLogger(__name__)
EYES = "eyes"


class ReviewActivities:
    def __init__(self, settings: Settings, executor: AgentExecutor) -> None:
        self.settings = settings
        self.executor = executor
        self._agent_id: int | None = None

    # --- helpers -------------------------------------------------------------------------------
    def _gl(self) -> gitlab.Gitlab:
        return gitlab_client(self.settings)

    def _agent_user_id(self, gl: gitlab.Gitlab) -> int:
        if self._agent_id is None:
            gl.auth()
            assert gl.user is not None
            self._agent_id = gl.user.id
        return self._agent_id

    def _writes(self, gl: gitlab.Gitlab) -> GitLabWrites:
        return GitLabWrites(gl, self._agent_user_id(gl))

    def _mr(self, gl: gitlab.Gitlab, project_id: int, mr_iid: int) -> tuple[Any, Any]:
        project = gl.projects.get(project_id)
        check_served(self.settings, project)
        return project, project.mergerequests.get(mr_iid)

    def _memory(self, gl: gitlab.Gitlab, mr: Any, head_sha: str) -> ReviewMemory:
        discussions = [d.attributes for d in mr.discussions.list(get_all=True)]
        agent = self._agent_user_id(gl)
        dismissers = {a for a in dismissal_authors(discussions, agent) if self._may_dismiss(gl, mr, a)}
        memory = read_memory(discussions, agent, head_sha, dismissers)
        if memory.rejected_markers:
            # A marker the service did not write (copied into a finding by the model, or invented):
            # ignored, so it cannot pick what the next review reads; operators should know.
            log.warning("ignored %d forged or copied marker(s) on MR !%s", memory.rejected_markers, mr.iid)
            metrics.markers_rejected.add(memory.rejected_markers)
        return memory

    def _may_dismiss(self, gl: gitlab.Gitlab, mr: Any, user_id: int) -> bool:
        """The MR author, or a member at or above DISMISS_MIN_ACCESS: anyone else's "won't fix" is
        answered (it is a reply in the agent's thread) but does not silence the finding."""
        if user_id == (mr.author or {}).get("id"):
            return True
        try:
            member = gl.projects.get(mr.project_id, lazy=True).members_all.get(user_id)
        except gitlab.GitlabGetError as exc:
            if exc.response_code == 404:
                return False
            raise
        return int(member.access_level) >= self.settings.dismiss_min_access.number

    # --- fetch_mr -----------------------------------------------------------------------------
    @activity.defn(name="fetch_mr")
    @activity_errors
    def fetch_mr(self, project_id: int, mr_iid: int) -> MRInfo:
        gl = self._gl()
        _, mr = self._mr(gl, project_id, mr_iid)
        refs = mr.diff_refs or {}
        if not refs.get("base_sha") or not refs.get("head_sha"):
            # GitLab computes the first diff version asynchronously right after an MR is created.
            raise TransientHTTPError(409, "merge request diff not ready yet", retry_after=3)
        author = mr.author or {}
        draft = bool(getattr(mr, "draft", False) or getattr(mr, "work_in_progress", False))
        return MRInfo(
            project_id=project_id,
            mr_iid=mr_iid,
            title=str(mr.title)[:300],
            state=mr.state,
            draft=draft,
            head_sha=mr.sha,
            base_sha=refs["base_sha"],
            start_sha=refs.get("start_sha") or refs["base_sha"],
            source_branch=mr.source_branch,
            target_branch=mr.target_branch,
            source_project_id=mr.source_project_id,
            author_username=str(author.get("username", "")),
            web_url=mr.web_url,
        )

    @activity.defn(name="review_skip_reason")
    @activity_errors
    def review_skip_reason(self, mr: MRInfo) -> str:
        """Why this MR must not be reviewed now ("" to go ahead); settings live in the worker."""
        if mr.state != "opened":
            return f"merge request is {mr.state}"
        if mr.draft and not self.settings.review_drafts:
            return "draft merge request (REVIEW_DRAFTS=false)"
        if mr.source_project_id != mr.project_id and not self.settings.review_forks:
            return "merge request from a fork (REVIEW_FORKS=false)"
        gl = self._gl()
        gl.auth()
        assert gl.user is not None
        if mr.author_username == gl.user.username:
            return "merge request authored by the agent"
        return ""

    # --- reactions ----------------------------------------------------------------------------
    @activity.defn(name="set_review_reaction")
    @activity_errors
    def set_review_reaction(self, project_id: int, mr_iid: int, on: bool) -> None:
        gl = self._gl()
        _, mr = self._mr(gl, project_id, mr_iid)
        if on:
            self._writes(gl).award(mr, EYES)
        else:
            self._writes(gl).unaward(mr, EYES)

    # --- cancel_older_reviews -------------------------------------------------------------------
    @activity.defn(name="cancel_older_reviews")
    @activity_errors
    async def cancel_older_reviews(
        self, project_id: int, mr_iid: int, head_sha: str, current_id: str
    ) -> bool:
        """Cancel running reviews of other SHAs of this MR, if `head_sha` is still the MR's head.

        Returns False when the MR has moved on (this review is the stale one and must stop); the
        newest review then cancels this one, never the other way round.
        """
        gl = self._gl()
        _, mr = await asyncio.to_thread(self._mr, gl, project_id, mr_iid)
        if mr.sha != head_sha:
            return False
        client: Client = activity.client()
        query = (
            f"WorkflowType = 'ReviewMR' AND ExecutionStatus = 'Running' AND GitLabProject = '{project_id}' "
            f"AND MergeRequestIID = {mr_iid}"
        )
        async for execution in client.list_workflows(query):
            if execution.id != current_id and execution.status == WorkflowExecutionStatus.RUNNING:
                await client.get_workflow_handle(execution.id, run_id=execution.run_id).cancel()
        return True

    # --- run_review ---------------------------------------------------------------------------
    def _review_task(self, data: ReviewRunInput) -> tuple[ReviewTask | None, ReviewMemory]:
        gl = self._gl()
        project, mr = self._mr(gl, data.project_id, data.mr_iid)
        if mr.sha != data.head_sha:
            return None, ReviewMemory()
        memory = self._memory(gl, mr, data.head_sha)
        commits = [str(c.message)[:1000] for c in mr.commits(get_all=True)][:100]
        refs = mr.diff_refs
        task = ReviewTask(
            repo=mr_repo_ref(project, mr, data.head_sha),
            project_path=project.path_with_namespace,
            mr_iid=data.mr_iid,
            title=str(mr.title or ""),
            description=str(mr.description or "")[:20_000],
            commit_messages=commits,
            base_sha=refs["base_sha"],
            since_sha=memory.last_reviewed_sha,
            prior_threads=[
                PriorThread(
                    thread_id=t.discussion_id,
                    file=t.file,
                    line=t.line,
                    title=t.title,
                    body=t.body,
                    outdated=t.outdated,
                    human_replies=t.human_replies[-10:],
                )
                for t in memory.open_threads[:100]
            ],
            dismissed=[
                DismissedThread(file=t.file, line=t.line, title=t.title)
                for t in memory.dismissed_threads[:200]
            ],
            exclude=self.settings.review_exclude,
            max_diff_lines=self.settings.review_max_diff_lines,
        )
        return task, memory

    @activity.defn(name="prepare_review")
    @activity_errors
    def prepare_review(self, data: ReviewRunInput) -> ReviewPrep:
        task, memory = self._review_task(data)
        if task is None:
            return ReviewPrep(superseded=True)
        return ReviewPrep(
            task=task,
            open_thread_ids=[t.discussion_id for t in memory.open_threads][:100],
            last_reviewed_sha=memory.last_reviewed_sha,
        )

    @activity.defn(name="run_review")
    @activity_errors
    async def run_review(self, data: ReviewRunInput, prep: ReviewPrep) -> ReviewRunResult:
        task = prep.task
        assert task is not None
        info = activity.info()
        run_id = f"{data.workflow_id}-{info.activity_id}"
        try:
            result = await heartbeating(run_agent(self.executor, task, run_id=run_id))
        except ValueError as exc:
            # The run was refused before it started (no CLI, no provider, invalid task): retrying
            # cannot help, an operator must fix the configuration.
            raise PermanentError(f"agent run refused: {exc}"[:500], kind="ConfigurationError") from exc
        scope = result.scope
        assert scope is not None
        open_ids = set(prep.open_thread_ids)
        findings = [_finding(r) for r in result.reports if isinstance(r, ReportedFinding)]
        resolutions = [
            Resolution(thread_id=r.thread_id, status=r.status, reply=r.reply)
            for r in result.reports
            if isinstance(r, ReportedResolution) and r.thread_id in open_ids  # only its own open threads
        ]
        summary = next((r.summary for r in result.reports if isinstance(r, FinishReview)), "")
        return ReviewRunResult(
            findings=findings[:50],
            resolutions=resolutions[:200],
            summary=summary,
            reviewed_from_sha=prep.last_reviewed_sha if scope.mode == "incremental" else None,
            full_review_reason=scope.full_reason,
            skipped_files=[f"{s.path}: {s.reason}" for s in scope.skipped][:500],
            reviewed_files=len(scope.reviewed_files),
            nothing_to_review=scope.mode == "nothing",
            prompt_chars=result.prompt_chars,
            prompt_tokens=result.usage.prompt_tokens if result.usage else None,
            tokens_used=tokens_used(result.usage),
        )

    # --- post_review --------------------------------------------------------------------------
    @activity.defn(name="post_review")
    @activity_errors
    def post_review(self, data: PostReviewInput) -> PostReviewResult:
        gl = self._gl()
        # Posting is many requests: a heartbeat on every response lets a crash mid-posting be
        # noticed within the heartbeat timeout instead of the 10-minute start-to-close timeout.
        gl.session.hooks["response"].append(_heartbeat_on_response)
        _, mr = self._mr(gl, data.project_id, data.mr_iid)
        if mr.sha != data.head_sha:
            return PostReviewResult(superseded=True)  # a newer push is being reviewed; say nothing stale
        memory = self._memory(gl, mr, data.head_sha)
        changes = mr.changes()["changes"]
        plan = plan_findings(data.run.findings, changes, mr.diff_refs, memory, data.head_sha)
        # What an earlier attempt of this review posted counts as delivered by this review.
        earlier_inline = sum(1 for thread in plan.earlier if thread.inline)
        result = PostReviewResult(
            duplicates_dropped=plan.duplicates,
            already_posted=plan.already_posted,
            inline=earlier_inline,
            fallback=len(plan.earlier) - earlier_inline,
        )
        writes = self._writes(gl)
        for item in plan.to_post:
            text, marker = render_finding(item, data.head_sha)
            if item.position is not None:
                try:
                    writes.discussion(mr, text, marker, position=item.position)
                    result.inline += 1
                    continue
                except gitlab.GitlabCreateError as exc:
                    if exc.response_code != 400:
                        raise
                    # GitLab refused the position after all: never lose the finding.
                    result.rejected_positions += 1
                    log.warning("position rejected for %s:%s", item.finding.file, item.finding.line)
                    item = item.as_fallback("GitLab did not accept an inline position for this line")
                    text, marker = render_finding(item, data.head_sha)
            writes.discussion(mr, text, marker)
            result.fallback += 1
        self._apply_resolutions(writes, mr, memory, data, result)
        self._upsert_summary(writes, mr, memory, data, result)
        # Recorded by the attempt that completes, with everything this review delivered, so a
        # retry neither drops what an earlier attempt posted nor counts it twice.
        metrics.review_findings.add(result.inline, {"placement": "inline"})
        metrics.review_findings.add(result.fallback, {"placement": "fallback"})
        metrics.review_positions_rejected.add(result.rejected_positions)
        return result

    def _apply_resolutions(
        self,
        writes: GitLabWrites,
        mr: Any,
        memory: ReviewMemory,
        data: PostReviewInput,
        result: PostReviewResult,
    ) -> None:
        behavior = self.settings.resolution_behavior.value
        for verdict in data.run.resolutions:
            thread = memory.thread(verdict.thread_id)
            if thread is None or not thread.open or verdict.status == "not_addressed":
                continue
            if verdict.status == "resolved":
                result.resolved += 1
            else:
                result.partial += 1
            if behavior == "off" or data.head_sha in thread.resolution_replied_for:
                continue
            label = "Resolved" if verdict.status == "resolved" else "Partly addressed"
            writes.reply(
                mr,
                thread.discussion_id,
                f"**{label}** in {data.head_sha[:8]}: {model_text(verdict.reply, 4000)}",
                markers.marker(markers.RESOLUTION, thread=thread.discussion_id, sha=data.head_sha),
            )
            if verdict.status == "resolved" and behavior == "auto-resolve":
                writes.resolve(mr, thread.discussion_id)

    def _upsert_summary(
        self,
        writes: GitLabWrites,
        mr: Any,
        memory: ReviewMemory,
        data: PostReviewInput,
        result: PostReviewResult,
    ) -> None:
        text, marker = render_summary(data, result, memory)
        if memory.summary_note_id is not None:
            writes.edit_note(mr, memory.summary_note_id, text, marker)
        else:
            writes.mr_note(mr, text, marker)

    # --- failure note -------------------------------------------------------------------------
    @activity.defn(name="post_review_failure")
    @activity_errors
    def post_review_failure(self, project_id: int, mr_iid: int, workflow_id: str, reason: str) -> bool:
        gl = self._gl()
        _, mr = self._mr(gl, project_id, mr_iid)
        memory = self._memory(gl, mr, "")
        if workflow_id in memory.failure_workflows:
            return False
        self._writes(gl).mr_note(
            mr,
            f":warning: The automated review could not be completed ({reason}). Operators can find the "
            f"run as workflow `{workflow_id}` in Temporal; a new push triggers a new review.",
            markers.marker(markers.FAILURE, workflow=workflow_id),
        )
        return True

    @activity.defn(name="post_review_limit_notice")
    @activity_errors
    def post_review_limit_notice(self, project_id: int, mr_iid: int, reason: str, key: str) -> bool:
        """Tell the MR once per limit key why it is not reviewed (True when posted now): a fork
        author pushing again and again gets one note on that MR, not one per push."""
        gl = self._gl()
        _, mr = self._mr(gl, project_id, mr_iid)
        writes = self._writes(gl)
        if writes.posted_in_any_thread(mr, markers.LIMIT, key=key):
            return False
        writes.mr_note(
            mr,
            f":hourglass: No automated review of this merge request: {reason}.",
            markers.marker(markers.LIMIT, key=key),
        )
        return True


def _heartbeat_on_response(response: Any, *args: Any, **kwargs: Any) -> None:
    activity.heartbeat()


def _finding(report: ReportedFinding) -> Finding:
    return Finding(
        file=report.file,
        line=report.line,
        end_line=report.end_line,
        side=report.side,
        severity=report.severity,
        title=report.title,
        body=report.body,
        suggestion=report.suggestion,
    )
