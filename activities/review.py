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
from activities.gitlab_api import client_user, mr_repo_ref, project_client
from activities.gitlab_writes import GitLabWrites, compose
from activities.heartbeat import heartbeating
from activities.http_errors import PermanentError, TransientHTTPError, activity_errors
from activities.review_ledger import LedgerHooks
from activities.review_publish import Publication, side_by_side
from contracts.agent_tasks import tokens_used
from contracts.coverage import MAX_PLANNED_FILES, ChangedFile
from contracts.delivery import STATUS_NAME
from contracts.models import (
    Finding,
    MRInfo,
    PostReviewInput,
    PostReviewResult,
    Resolution,
    ReviewPrep,
    ReviewRunInput,
    ReviewRunResult,
    ReviewStatusInput,
)
from contracts.settings import ReviewPublish, Settings
from core import markers
from core.review_bundles import (
    BundleLimits,
    diff_size,
    excluded,
    needs_bundles,
    plan_bundles,
    planned,
    run_coverage,
)
from core.review_memory import ReviewMemory, dismissal_authors, read_memory
from core.review_post import plan_findings, render_summary
from core.review_receipt import final_status
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
        self._drafts_ok: bool | None = None  # REVIEW_PUBLISH=auto: does this GitLab have draft notes?

    # --- helpers -------------------------------------------------------------------------------
    def _gl(self, project: int) -> gitlab.Gitlab:
        """A client with the project's credential (GITLAB_TOKEN or its GITLAB_TOKEN__<ALIAS>)."""
        return project_client(self.settings, project)

    def _agent_user_id(self, gl: gitlab.Gitlab) -> int:
        """The agent's user for `gl`'s credential (cached per credential)."""
        return client_user(self.settings, gl).id

    def _writes(self, gl: gitlab.Gitlab) -> GitLabWrites:
        return GitLabWrites(gl, self._agent_user_id(gl))

    def _mr(self, gl: gitlab.Gitlab, project_id: int, mr_iid: int) -> tuple[Any, Any]:
        project = gl.projects.get(project_id)
        check_served(self.settings, project)
        return project, project.mergerequests.get(mr_iid)

    def _memory(
        self, gl: gitlab.Gitlab, mr: Any, head_sha: str, known: dict[int, int] | None = None
    ) -> ReviewMemory:
        """`known`: access levels looked up already (kept across the reads of one activity)."""
        discussions = [d.attributes for d in mr.discussions.list(get_all=True)]
        agent = self._agent_user_id(gl)
        known = {} if known is None else known
        access = {}
        for author in dismissal_authors(discussions, agent):
            if author not in known:
                known[author] = self._access(gl, mr, author)
            access[author] = known[author]
        floor = self.settings.dismiss_min_access.number
        dismissers = {a for a, level in access.items() if level >= floor or a == (mr.author or {}).get("id")}
        members = {a for a, level in access.items() if level >= floor}  # may teach the project (ledger)
        memory = read_memory(discussions, agent, head_sha, dismissers, members)
        if memory.rejected_markers:
            # A marker the service did not write (copied into a finding by the model, or invented):
            # ignored, so it cannot pick what the next review reads; operators should know.
            log.warning("ignored %d forged or copied marker(s) on MR !%s", memory.rejected_markers, mr.iid)
            metrics.markers_rejected.add(memory.rejected_markers)
        return memory

    def _access(self, gl: gitlab.Gitlab, mr: Any, user_id: int) -> int:
        """A user's access level in the MR's project (0: not a member). The MR author or a member
        at or above DISMISS_MIN_ACCESS may dismiss: anyone else's "won't fix" is answered (it is a
        reply in the agent's thread) but does not silence the finding; only members teach the
        project (core/ledger.py)."""
        try:
            member = gl.projects.get(mr.project_id, lazy=True).members_all.get(user_id)
        except gitlab.GitlabGetError as exc:
            if exc.response_code == 404:
                return 0
            raise
        return int(member.access_level)

    # --- fetch_mr -----------------------------------------------------------------------------
    @activity.defn(name="fetch_mr")
    @activity_errors
    def fetch_mr(self, project_id: int, mr_iid: int) -> MRInfo:
        gl = self._gl(project_id)
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
        gl = self._gl(mr.project_id)
        if mr.author_username == client_user(self.settings, gl).username:
            return "merge request authored by the agent"
        return ""

    # --- reactions ----------------------------------------------------------------------------
    @activity.defn(name="set_review_reaction")
    @activity_errors
    def set_review_reaction(self, project_id: int, mr_iid: int, on: bool) -> None:
        gl = self._gl(project_id)
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
        gl = self._gl(project_id)
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
    def _review_task(self, data: ReviewRunInput) -> tuple[ReviewTask | None, ReviewMemory, set[str]]:
        """The task, the review memory, and the IDs of the MR's commits."""
        gl = self._gl(data.project_id)
        project, mr = self._mr(gl, data.project_id, data.mr_iid)
        if mr.sha != data.head_sha:
            return None, ReviewMemory(), set()
        memory = self._memory(gl, mr, data.head_sha)
        mr_commits = list(mr.commits(get_all=True))
        commits = [str(c.message)[:1000] for c in mr_commits][:100]
        refs = mr.diff_refs
        task = ReviewTask(
            repo=mr_repo_ref(project, mr, data.head_sha, gl.credential),
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
            **self.settings.run_options_for(project.path_with_namespace, data.project_id),
        )
        return task, memory, {str(c.id) for c in mr_commits}

    @activity.defn(name="prepare_review")
    @activity_errors
    def prepare_review(self, data: ReviewRunInput) -> ReviewPrep:
        task, memory, commit_ids = self._review_task(data)
        if task is None:
            return ReviewPrep(superseded=True)
        prep = ReviewPrep(
            task=task,
            open_thread_ids=[t.discussion_id for t in memory.open_threads][:100],
            last_reviewed_sha=memory.last_reviewed_sha,
        )
        return self._plan_bundles(data, task, prep, commit_ids)

    # --- bundles of a large review (the agent-run side; core/review_bundles.py decides) -----------
    def _changed_files(
        self, data: ReviewRunInput, since_sha: str | None, commit_ids: set[str]
    ) -> list[ChangedFile]:
        """The files this review is about, sized from GitLab's diffs: the MR's, or for an
        incremental review (the last reviewed commit is one of the MR's) the new commits' only."""
        gl = self._gl(data.project_id)
        base = f"/projects/{data.project_id}"
        if since_sha and since_sha != data.head_sha and since_sha in commit_ids:
            compare = gl.http_get(
                f"{base}/repository/compare",
                query_data={"from": since_sha, "to": data.head_sha, "straight": "true"},
            )
            diffs = list(compare.get("diffs") or []) if isinstance(compare, dict) else []
        elif since_sha == data.head_sha:
            return []
        else:
            try:
                diffs = list(
                    gl.http_list(f"{base}/merge_requests/{data.mr_iid}/diffs", get_all=True, per_page=100)
                )
            except gitlab.GitlabHttpError as exc:  # GitLab before 15.7 has no paginated diffs
                if exc.response_code != 404:
                    raise
                changes = gl.http_get(f"{base}/merge_requests/{data.mr_iid}/changes")
                diffs = list(changes.get("changes") or []) if isinstance(changes, dict) else []
        files: list[ChangedFile] = []
        for d in diffs[:MAX_PLANNED_FILES]:
            lines, chars = diff_size(str(d.get("diff") or ""))
            path = str(d.get("new_path") or d.get("old_path"))
            old = str(d["old_path"]) if d.get("renamed_file") and d.get("old_path") else None
            files.append(ChangedFile(path=path, old_path=old, lines=lines, chars=chars))
        return files

    def _plan_bundles(
        self, data: ReviewRunInput, task: ReviewTask, prep: ReviewPrep, commit_ids: set[str]
    ) -> ReviewPrep:
        limits = BundleLimits(
            max_lines=self.settings.review_max_diff_lines,
            max_tokens=self.settings.review_bundle_max_tokens,
            max_bundles=self.settings.review_max_bundles,
            max_mr_tokens=self.settings.review_max_tokens_per_mr,
        )
        files = self._changed_files(data, prep.last_reviewed_sha, commit_ids)
        reviewable, _ = excluded(files, task.exclude)
        if not needs_bundles(reviewable, limits):
            return prep  # one run takes it all: no bundles
        plan = plan_bundles(files, task.exclude, limits)
        return prep.model_copy(
            update={
                "bundles": planned(plan),
                "not_reviewed": plan.not_reviewed[:MAX_PLANNED_FILES],
                "plan_notes": plan.notes[:20],
            }
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
        coverage = run_coverage(
            scope.reviewed_files,
            [(s.path, s.reason) for s in scope.skipped],
            [(p.path, p.reason) for p in scope.partial],
            expected=task.files,
        )
        return ReviewRunResult(
            findings=findings[:50],
            resolutions=resolutions[:200],
            summary=summary,
            reviewed_from_sha=prep.last_reviewed_sha if scope.mode == "incremental" else None,
            full_review_reason=scope.full_reason,
            skipped_files=[f"{s.path}: {s.reason}" for s in scope.skipped][:500],
            reviewed_files=len(scope.reviewed_files) + len(scope.partial),
            coverage=coverage,
            nothing_to_review=scope.mode == "nothing",
            prompt_chars=result.prompt_chars,
            prompt_tokens=result.usage.prompt_tokens if result.usage else None,
            tokens_used=tokens_used(result.usage),
        )

    # --- post_review --------------------------------------------------------------------------
    @activity.defn(name="post_review")
    @activity_errors
    def post_review(self, data: PostReviewInput) -> PostReviewResult:
        gl = self._gl(data.project_id)
        # Posting is many requests: a heartbeat on every response lets a crash mid-posting be
        # noticed within the heartbeat timeout instead of the 10-minute start-to-close timeout.
        gl.session.hooks["response"].append(_heartbeat_on_response)
        project, mr = self._mr(gl, data.project_id, data.mr_iid)
        if mr.sha != data.head_sha:
            return PostReviewResult(superseded=True)  # a newer push is being reviewed; say nothing stale
        # The two reads posting starts from, side by side (they are independent).
        access: dict[int, int] = {}
        memory, changes = side_by_side(
            [lambda: self._memory(gl, mr, data.head_sha, access), lambda: mr.changes()["changes"]]
        )
        ledger = LedgerHooks(self.settings, project, mr, memory, data)
        plan = plan_findings(data.run.findings, changes, mr.diff_refs, memory, data.head_sha)
        ledger.gate(plan, changes)  # the ledger's rules: touched lines only, never a known finding again
        writes = self._writes(gl)
        behavior = self.settings.resolution_for(str(project.path_with_namespace), data.project_id).value
        # The ledger decides its answers in the agent's threads before anything is published, so
        # they travel with the findings (review_ledger.py: LedgerHooks.decide says why that order).
        answers = ledger.decide(memory, behavior)
        publication = Publication(
            self.settings,
            writes,
            mr,
            data,
            memory,
            plan,
            reread=lambda: self._memory(gl, mr, data.head_sha, access),
            answers=answers,
        )
        if self._drafts_available(mr):
            result, sent_summary = publication.drafts()
        else:
            result, sent_summary = publication.direct(), None
        after = publication.after
        assert after is not None
        ledger.settle(after, result)
        note_id = self._upsert_summary(writes, mr, memory, after, data, result, sent_summary, ledger)
        result.summary_url = f"{mr.web_url}#note_{note_id}"
        result.status = final_status(
            result,
            data.run.coverage,
            fail_on_critical=self.settings.review_status_fail_on_critical,
            target_url=result.summary_url,
        )
        # Recorded by the attempt that completes, with everything this review delivered, so a
        # retry neither drops what an earlier attempt posted nor counts it twice.
        metrics.review_findings.add(result.inline, {"placement": "inline"})
        metrics.review_findings.add(result.fallback, {"placement": "fallback"})
        metrics.review_positions_rejected.add(result.rejected_positions)
        return result

    def _drafts_available(self, mr: Any) -> bool:
        """Whether this review goes out as one batch of draft notes (REVIEW_PUBLISH; "auto" asks
        the instance once per worker: GitLab without the draft notes API answers 404)."""
        mode = self.settings.review_publish
        if mode != ReviewPublish.AUTO:
            return mode == ReviewPublish.DRAFTS
        if self._drafts_ok is None:
            try:
                mr.draft_notes.list(get_all=False, per_page=1)
                self._drafts_ok = True
            except gitlab.GitlabListError as exc:
                if exc.response_code not in (403, 404):
                    raise
                log.info(
                    "GitLab has no draft notes API here (%s): reviews post thread by thread",
                    exc.response_code,
                )
                self._drafts_ok = False
        return self._drafts_ok

    def _upsert_summary(
        self,
        writes: GitLabWrites,
        mr: Any,
        memory: ReviewMemory,
        after: ReviewMemory,
        data: PostReviewInput,
        result: PostReviewResult,
        sent: str | None,
        ledger: LedgerHooks,
    ) -> int:
        """Write the summary with the final receipt; its note ID. `sent`: the body GitLab was given
        with the batch (GitLab versions that ignore it get the note now); `after`: the MR read back
        after publishing."""
        text, marker = render_summary(data, result, memory)
        text = ledger.summary(text)  # the folded Findings table and the signed ledger
        note_id = memory.summary_note_id
        if sent is not None:
            note_id = after.summary_note_id
            if note_id is not None and compose(text, marker) == sent:
                return note_id  # published with the batch, and the receipt came true
        if note_id is not None:
            writes.edit_note(mr, note_id, text, marker)
            return note_id
        return writes.mr_note(mr, text, marker)

    # --- commit status -------------------------------------------------------------------------
    @activity.defn(name="set_review_status")
    @activity_errors
    def set_review_status(self, data: ReviewStatusInput) -> str:
        """Set the `copilot-review` status of the reviewed head; the state it has afterwards ("" when
        REVIEW_COMMIT_STATUS is off, or when `only_if_running` finds no running status to end)."""
        if not self.settings.review_commit_status:
            return ""
        gl = self._gl(data.project_id)
        project, mr = self._mr(gl, data.project_id, data.mr_iid)
        update = data.update
        if data.repeat_previous:
            # Nothing new to review at this head: end as the review that reviewed it ended.
            previous = self._writes(gl).previous_status(project, data.head_sha, STATUS_NAME)
            if previous is not None:
                update = update.model_copy(
                    update={"state": previous["status"], "description": previous.get("description") or ""}
                )
        return self._writes(gl).commit_status(
            project,
            data.head_sha,
            name=STATUS_NAME,
            state=update.state,
            ref=mr.source_branch,
            description=update.description,
            target_url=update.target_url,
            only_over=("running", "pending") if data.only_if_running else (),
        )

    # --- failure note -------------------------------------------------------------------------
    @activity.defn(name="post_review_failure")
    @activity_errors
    def post_review_failure(self, project_id: int, mr_iid: int, workflow_id: str, reason: str) -> bool:
        gl = self._gl(project_id)
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
        gl = self._gl(project_id)
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
        category=report.category,
    )
