"""Activities of MRDiscussion: decide whether a note is the agent's to answer, run the agent on it
(committing and pushing a requested change inside the same activity, so the patch never enters
workflow history), and post one reply in the note's thread.

Idempotency: the reply carries a hidden `reply note=<id>` marker and is only written when no agent
note in the thread has it; a pushed commit carries a trailer naming the note, and a retried run
that finds that commit on the MR reports it instead of running the agent again.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import gitlab
from temporalio import activity

from activities.authority import PROJECT_NOT_SERVED, check_served
from activities.discussion_push import PushOutcome, commit_and_push, commit_message, find_earlier_push
from activities.gitlab_api import client_user, credential_token, mr_repo_ref, project_client
from activities.gitlab_writes import GitLabWrites
from activities.heartbeat import heartbeating
from activities.http_errors import PermanentError, activity_errors
from contracts.agent_tasks import tokens_used
from contracts.discussion import (
    Admission,
    AdmitDiscussionInput,
    DiscussionContext,
    DiscussionRunInput,
    DiscussionRunResult,
    LimitNoticeInput,
    MRDiscussionInput,
    PostDiscussionReplyInput,
    PostDiscussionReplyResult,
)
from contracts.settings import AccessLevel, Settings
from core import markers
from core.discussion_reply import clean_model_text, render_failure, render_reply
from core.discussion_thread import ThreadView, read_thread
from core.mentions import mentions
from core.push_rights import matching_rules, push_groups, push_refusal
from executors.base import AgentExecutor, safe_name
from executors.report_tool import ChangeReport, DiscussionReply, Resolution
from executors.tasks import DiscussionTask
from telemetry.agent_run import run_agent

EYES = "eyes"
RATE_WINDOW = timedelta(hours=1)


class DiscussionActivities:
    def __init__(self, settings: Settings, executor: AgentExecutor) -> None:
        self.settings = settings
        self.executor = executor

    # --- helpers -------------------------------------------------------------------------------
    def _gl(self, project: int) -> gitlab.Gitlab:
        """A client with the project's credential (GITLAB_TOKEN or its GITLAB_TOKEN__<ALIAS>)."""
        return project_client(self.settings, project)

    def _agent_user(self, gl: gitlab.Gitlab) -> tuple[int, str]:
        """The agent's user id and name for `gl`'s credential (cached per credential)."""
        user = client_user(self.settings, gl)
        return user.id, user.username

    def _mr(self, gl: gitlab.Gitlab, project_id: int, mr_iid: int) -> tuple[Any, Any]:
        project = gl.projects.get(project_id)
        check_served(self.settings, project)
        return project, project.mergerequests.get(mr_iid)

    def _discussion(self, mr: Any, note_id: int, discussion_id: str | None) -> Any | None:
        if discussion_id:
            try:
                return mr.discussions.get(discussion_id)
            except gitlab.GitlabGetError as exc:
                if exc.response_code == 404:
                    return None
                raise
        for discussion in mr.discussions.list(iterator=True):
            if any(n.get("id") == note_id for n in discussion.attributes.get("notes") or []):
                return discussion
        return None

    def _access_level(self, project: Any, user_id: int | None) -> int:
        if user_id is None:
            return 0
        try:
            return int(project.members_all.get(user_id).access_level)
        except gitlab.GitlabGetError as exc:
            if exc.response_code == 404:
                return 0  # not a member (e.g. a comment on a public project)
            raise

    def _push_decision(self, gl: gitlab.Gitlab, project: Any, mr: Any, view: ThreadView) -> tuple[str, str]:
        """(why this note may not make the agent push, why GitLab would not let its author push to the
        source branch themselves): both "" when it may. Read from GitLab every time it is asked."""
        if not self.settings.discussion_push:
            return "pushing changes from notes is disabled on this service (DISCUSSION_PUSH=false)", ""
        if mr.source_project_id != mr.target_project_id:
            return "the source branch is in a fork, and pushing to forks is not supported", ""
        needed: AccessLevel = self.settings.discussion_push_min_access
        level = self._access_level(project, view.author_id)
        if level < needed.number:
            return (
                f"@{view.author_username} needs at least {needed.value} access to the project to have me push",
                "",
            )
        refusal = self._branch_refusal(gl, project, mr.source_branch, view, level)
        return refusal, refusal

    def _branch_refusal(
        self, gl: gitlab.Gitlab, project: Any, branch: str, view: ThreadView, level: int
    ) -> str:
        """The agent pushes with its own rights, so it checks the requester's own right to push to
        `branch` under the project's protected-branch rules (core/push_rights.py)."""
        rules = [r.attributes for r in project.protectedbranches.list(get_all=True)]
        groups = push_groups(matching_rules(rules, branch))
        member_of = {g for g in groups if self._in_group(gl, g, view.author_id)}
        return push_refusal(
            rules, branch, username=view.author_username, user_id=view.author_id, access_level=level,
            member_of=member_of,
        )  # fmt: skip

    def _in_group(self, gl: gitlab.Gitlab, group_id: int, user_id: int | None) -> bool:
        if user_id is None:
            return False
        try:
            gl.groups.get(group_id, lazy=True).members_all.get(user_id)
            return True
        except gitlab.GitlabGetError as exc:
            if exc.response_code == 404:
                return False
            raise

    # --- discussion_context --------------------------------------------------------------------
    @activity.defn(name="discussion_context")
    @activity_errors
    def discussion_context(self, data: MRDiscussionInput) -> DiscussionContext:
        gl = self._gl(data.project_id)
        agent_id, agent_name = self._agent_user(gl)  # looked up once an hour per credential
        discussion = None
        if data.discussion_id and self._served_by_id(data.project_id):
            # The common case is a human reply in a thread the agent never joined: decide it with one
            # GitLab call (the thread, through lazy objects), before anything else is read.
            lazy = gl.projects.get(data.project_id, lazy=True).mergerequests.get(data.mr_iid, lazy=True)
            discussion = self._discussion(lazy, data.note_id, data.discussion_id)
            early = read_thread(discussion.attributes, data.note_id, agent_id) if discussion else None
            if early and early.found and not mentions(early.body, agent_name) and not early.agent_posted:
                return DiscussionContext(
                    ignore_reason=f"the note neither mentions @{agent_name} nor replies in a thread of the agent"
                )
        try:
            project, mr = self._mr(gl, data.project_id, data.mr_iid)
        except PermanentError as exc:
            if exc.kind != PROJECT_NOT_SERVED:
                raise
            return DiscussionContext(ignore_reason=str(exc))
        discussion = discussion or self._discussion(mr, data.note_id, data.discussion_id)
        view = read_thread(discussion.attributes, data.note_id, agent_id) if discussion else ThreadView()
        if not view.found:
            return DiscussionContext(ignore_reason="note not found on this merge request")
        if view.system:
            return DiscussionContext(ignore_reason="system note")
        if view.author_id == agent_id:
            return DiscussionContext(ignore_reason="note written by the agent")
        if mr.state != "opened":
            return DiscussionContext(ignore_reason=f"merge request is {mr.state}")
        if not mentions(view.body, agent_name) and not view.agent_posted:
            return DiscussionContext(
                ignore_reason=f"the note neither mentions @{agent_name} nor replies in a thread of the agent"
            )
        needed = self.settings.discussion_min_access
        if self._access_level(project, view.author_id) < needed.number:
            who = "members with at least the " + needed.value + " role" if needed.number else "anyone"
            return DiscussionContext(
                discussion_id=discussion.id,
                author_username=view.author_username,
                author_id=view.author_id or 0,
                limited_reason=f"I answer {who} in this project, and @{view.author_username} is not one "
                "(DISCUSSION_MIN_ACCESS)",
                limit_key=f"role-{view.author_id or 0}",
            )
        reason, _ = self._push_decision(gl, project, mr, view)
        return DiscussionContext(
            already_replied=view.already_replied,
            discussion_id=discussion.id,
            author_username=view.author_username,
            author_id=view.author_id or 0,
            head_sha=mr.sha,
            may_push=not reason,
            no_push_reason=reason,
            own_finding=view.own_finding,
        )

    def _served_by_id(self, project_id: int) -> bool:
        """Whether GITLAB_PROJECTS admits the project without asking GitLab for its path."""
        return self.settings.serves_project_ref(project_id)  # its ID, or the ID an entry resolved to

    # --- spend limits -----------------------------------------------------------------------------
    @activity.defn(name="admit_discussion")
    @activity_errors
    async def admit_discussion(self, data: AdmitDiscussionInput) -> Admission:
        """Per-user and per-MR answer rates over the last hour, counted in Temporal's visibility
        (MRDiscussion runs tagged GitLabUser once admitted): durable, and shared by all workers."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,255}", data.author_username):
            return Admission(reason="the note's author has a username I cannot count", limit_key="rate-name")
        client = activity.client()
        now = activity.info().started_time or datetime.now(UTC)
        since = (now - RATE_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
        hour = now.strftime("%Y%m%d%H")
        # Per task queue, like the agent slots: deployments sharing a namespace count separately.
        queue = activity.info().task_queue
        base = (
            f"WorkflowType = 'MRDiscussion' AND TaskQueue = '{queue}' AND GitLabProject = '{data.project_id}' "
            f"AND StartTime > '{since}'"
        )
        checks = [
            (
                self.settings.discussion_rate_per_user,
                f"{base} AND GitLabUser = '{data.author_username}'",
                f"@{data.author_username} had {{n}} answers from me in this project in the last hour "
                f"(limit {self.settings.discussion_rate_per_user}, DISCUSSION_RATE_PER_USER); please wait a little",
                f"rate-user-{data.author_id}-{hour}",
            ),
            (
                self.settings.discussion_rate_per_mr,
                f"{base} AND MergeRequestIID = {data.mr_iid} AND GitLabUser IS NOT NULL",
                f"this merge request had {{n}} answers from me in the last hour "
                f"(limit {self.settings.discussion_rate_per_mr}, DISCUSSION_RATE_PER_MR); please wait a little",
                f"rate-mr-{hour}",
            ),
        ]
        for limit, query, reason, key in checks:
            if limit and (n := (await client.count_workflows(query)).count) >= limit:
                return Admission(reason=reason.format(n=n), limit_key=key)
        return Admission()

    @activity.defn(name="post_limit_notice")
    @activity_errors
    def post_limit_notice(self, data: LimitNoticeInput) -> bool:
        """Tell the MR once per limit key why the agent does not answer (True when posted now)."""
        gl = self._gl(data.project_id)
        agent_id, _ = self._agent_user(gl)
        _, mr = self._mr(gl, data.project_id, data.mr_iid)
        writes = GitLabWrites(gl, agent_id)
        if writes.posted_in_any_thread(mr, markers.LIMIT, key=data.limit_key):
            return False
        marker = markers.marker(markers.LIMIT, key=data.limit_key)
        writes.reply(mr, data.discussion_id, f":hourglass: {data.reason}.", marker)
        return True

    # --- reaction ------------------------------------------------------------------------------
    @activity.defn(name="set_note_reaction")
    @activity_errors
    def set_note_reaction(self, project_id: int, mr_iid: int, note_id: int, on: bool) -> None:
        gl = self._gl(project_id)
        _, mr = self._mr(gl, project_id, mr_iid)
        agent_id, _ = self._agent_user(gl)
        note = mr.notes.get(note_id, lazy=True)
        writes = GitLabWrites(gl, agent_id)
        if on:
            writes.award(note, EYES)
        else:
            writes.unaward(note, EYES)

    # --- run_discussion ------------------------------------------------------------------------
    def _task(self, data: DiscussionRunInput) -> tuple[DiscussionTask | dict[str, Any], Any, Any, str]:
        """The agent task (or the commit an earlier attempt already pushed for this note), and why the
        service refuses to push for this request ("" when it does not).

        The push decision is made again here from GitLab, not taken from the input: a crafted or stale
        `may_push: true` (a manual start, a role or protection changed since) never pushes."""
        gl = self._gl(data.project_id)
        agent_id, _ = self._agent_user(gl)
        project, mr = self._mr(gl, data.project_id, data.mr_iid)
        commits = [c.attributes for c in mr.commits(get_all=True)]
        earlier = find_earlier_push(commits, data.note_id, self.settings.agent_author_email)
        if earlier is not None:
            return earlier, project, mr, ""
        view = read_thread(mr.discussions.get(data.discussion_id).attributes, data.note_id, agent_id)
        reason, branch_reason = self._push_decision(gl, project, mr, view)
        may_push = data.may_push and not reason
        refusal = branch_reason
        if data.may_push and reason:
            refusal = f"the request's permission to push no longer holds in GitLab ({reason})"
        history = view.history[:-1]  # the last entry is the note itself: it is the request
        task = DiscussionTask(
            repo=mr_repo_ref(project, mr, mr.sha, gl.credential),
            project_path=project.path_with_namespace,
            mr_iid=data.mr_iid,
            title=str(mr.title or "")[:20_000],
            description=str(mr.description or "")[:20_000],
            base_sha=mr.diff_refs["base_sha"],
            thread=[
                {"author": n.author, "body": n.body, "by_agent": "yes" if n.by_agent else "no"}
                for n in history[-100:]
            ],
            request=view.body[:20_000],
            position=view.position,
            own_finding_thread_id=data.discussion_id if data.own_finding else None,
            may_push=may_push,
            max_diff_lines=self.settings.review_max_diff_lines,
            author=view.author_username,
            no_push_reason="" if may_push else (reason or data.no_push_reason),
            exclude=self.settings.review_exclude,
            **self.settings.run_options_for(project.path_with_namespace, project.id),
        )
        return task, project, mr, refusal

    def _refusal_now(self, data: DiscussionRunInput, project: Any, mr: Any) -> str:
        """Asked again right before the push: the run took minutes, rights and protection may have
        changed meanwhile."""
        gl = self._gl(data.project_id)
        agent_id, _ = self._agent_user(gl)
        view = read_thread(mr.discussions.get(data.discussion_id).attributes, data.note_id, agent_id)
        reason, _ = self._push_decision(gl, project, mr, view)
        return reason

    @activity.defn(name="run_discussion")
    @activity_errors
    async def run_discussion(self, data: DiscussionRunInput) -> DiscussionRunResult:
        task, project, mr, refusal = await asyncio.to_thread(self._task, data)
        if isinstance(task, dict):
            return DiscussionRunResult(
                reply="I already handled this request in an earlier attempt.",
                push="earlier",
                commit_sha=str(task.get("id", "")),
                commit_title=str(task.get("title", ""))[:200],
            )
        run_id = f"{data.workflow_id}-{activity.info().activity_id}"
        try:
            result = await heartbeating(run_agent(self.executor, task, run_id=run_id))
        except ValueError as exc:
            raise PermanentError(f"agent run refused: {exc}"[:500], kind="ConfigurationError") from exc
        reply = next((r.body for r in result.reports if isinstance(r, DiscussionReply)), "")
        change = next((r for r in result.reports if isinstance(r, ChangeReport)), None)
        verdict = next(
            (
                r
                for r in result.reports
                if isinstance(r, Resolution) and r.thread_id == task.own_finding_thread_id
            ),
            None,
        )
        out = DiscussionRunResult(
            reply=clean_model_text(reply),
            resolution=verdict.status if verdict else None,
            resolution_reply=clean_model_text(verdict.reply, 4000) if verdict else "",
            push_refusal=refusal,
            tokens_used=tokens_used(result.usage),
        )
        if result.patch_too_large:
            out.push = "too_large"
        elif result.patch and (late := await asyncio.to_thread(self._refusal_now, data, project, mr)):
            out.push, out.push_refusal = "not_allowed", late
        elif result.patch:
            summary = change.summary if change else "apply the change requested in the discussion"
            message = commit_message(
                change.commit_type if change else "chore", summary, data.author_username, data.note_id
            )
            pushed = await heartbeating(
                asyncio.to_thread(self._push, data, project, mr, task, result.patch, message)
            )
            out.push = pushed.outcome
            out.commit_sha = pushed.sha
            out.commit_title = message.split("\n", 1)[0][:200]
            out.change_summary = clean_model_text(summary, 4000)
            out.files_changed = list(pushed.files)
        return out

    def _push(
        self, data: DiscussionRunInput, project: Any, mr: Any, task: DiscussionTask, patch: str, message: str
    ) -> PushOutcome:
        digest = hashlib.sha256(data.workflow_id.encode()).hexdigest()[:10]
        work = self.settings.work_path / f"push-{safe_name(data.workflow_id, 40)}-{digest}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        token = credential_token(self.settings, task.repo.credential)  # the project's credential
        try:
            return commit_and_push(
                clone_url=project.http_url_to_repo,
                token=token,
                work_dir=work,
                branch=mr.source_branch,
                head_sha=task.repo.head_sha,
                patch=patch,
                message=message,
                author=(self.settings.agent_author_name, self.settings.agent_author_email),
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # --- post_discussion_reply -----------------------------------------------------------------
    @activity.defn(name="post_discussion_reply")
    @activity_errors
    def post_discussion_reply(self, data: PostDiscussionReplyInput) -> PostDiscussionReplyResult:
        gl = self._gl(data.project_id)
        agent_id, _ = self._agent_user(gl)
        project, mr = self._mr(gl, data.project_id, data.mr_iid)
        discussion = mr.discussions.get(data.discussion_id)
        view = read_thread(discussion.attributes, data.note_id, agent_id)
        if view.already_replied:
            return PostDiscussionReplyResult(posted=False)
        behavior = self.settings.resolution_for(str(project.path_with_namespace), data.project_id).value
        if data.run is None:
            text, marker = render_failure(
                data.failure or "unknown error", note_id=data.note_id, workflow_id=data.workflow_id
            )
        else:
            text, marker = render_reply(
                data.run, note_id=data.note_id, branch=mr.source_branch, behavior=behavior
            )
        writes = GitLabWrites(gl, agent_id)
        note_id = writes.reply(mr, data.discussion_id, text, marker)
        resolved = False
        if (
            data.run is not None
            and data.run.resolution == "resolved"
            and behavior == "auto-resolve"
            and view.own_finding
            and not view.resolved
        ):
            writes.resolve(mr, data.discussion_id)
            resolved = True
        return PostDiscussionReplyResult(posted=True, note_id=note_id, resolved=resolved)
