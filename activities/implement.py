"""Activities of ImplementIssue: Jira status and comments, the agent's change pushed as a commit, the
draft MR.

Every step looks for its own earlier effect first, so a retry or a worker restart at any point never
creates a second branch, MR or comment:
- the pushed commit carries `Jira-Issue` / `Workflow-Run` trailers; a retry finds the branch it
  pushed instead of running the agent again (the measured result comes back from the heartbeat
  details, or, if the worker died before that heartbeat, the summary from the commit message);
- the MR is looked up by its source branch before one is created;
- Jira comments carry a tag with the run ID; transitions are skipped when the issue is there already.
The patch stays inside `implement_change`: it goes from the executor's result to `git apply` here
and never into workflow history.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.agent_commit import commit_patch
from activities.authority import check_served
from activities.git_push import push_head
from activities.gitlab_api import credential_token, gitlab_client
from activities.gitlab_writes import GitLabWrites
from activities.heartbeat import heartbeating
from activities.http_errors import PermanentError, activity_errors
from activities.issue_target import issue_target
from activities.jira_api import FAILED_LABEL, jira_client, mapping_for, read_issue, statuses
from activities.jira_writes import add_label, comment, comment_tag, transition
from contracts.agent_tasks import tokens_used
from contracts.implement import (
    CriterionResult,
    ImplementRunInput,
    ImplementRunResult,
    IssueInfo,
    OpenMRInput,
    OpenMRResult,
    StatusRole,
)
from contracts.settings import Settings
from core import implement_commit as commits
from core.acceptance import acceptance_criteria, map_evidence
from core.mr_description import mr_title, render_description
from core.push_rights import matching_rules
from executors.base import AgentExecutor, safe_name
from executors.git_repo import GitError, clone, git
from executors.report_tool import Implementation
from executors.run_implement import MAX_PATCH_BYTES
from executors.tasks import ImplementTask, RepoRef
from telemetry.agent_run import run_agent

log = logging.getLogger(__name__)


class ImplementActivities:
    def __init__(self, settings: Settings, executor: AgentExecutor) -> None:
        self.settings = settings
        self.executor = executor

    def _credential(self, issue_key: str) -> str:
        """The GitLab credential of the issue's project: its binding's credential_ref."""
        return mapping_for(self.settings, issue_key)[1].credential_ref

    def _token(self, issue_key: str) -> str:
        return credential_token(self.settings, self._credential(issue_key))

    def _author(self) -> tuple[str, str]:
        return self.settings.agent_author_name, self.settings.agent_author_email

    # --- Jira ------------------------------------------------------------------------------------
    @activity.defn(name="implement_issue_info")
    @activity_errors
    def issue_info(self, issue_key: str) -> IssueInfo:
        project, mapping = mapping_for(self.settings, issue_key)
        issue = read_issue(jira_client(self.settings), issue_key)
        # Not lazy when GITLAB_PROJECTS is set: the allowlist may name the project by its path.
        lazy = mapping.repo.isdigit() and not self.settings.gitlab_projects
        gitlab_project = gitlab_client(self.settings, mapping.credential_ref).projects.get(
            mapping.repo, lazy=lazy
        )
        check_served(self.settings, gitlab_project)
        return IssueInfo(
            key=issue["key"],
            project_key=project,
            summary=issue["summary"],
            status=issue["status"],
            repo=mapping.repo,
            target_branch=mapping.target_branch,
            gitlab_project_id=int(gitlab_project.get_id()),
        )

    @activity.defn(name="implement_trigger_status")
    @activity_errors
    def trigger_status(self, issue_key: str) -> str:
        return statuses(self.settings, mapping_for(self.settings, issue_key)[1]).trigger

    @activity.defn(name="implement_transition")
    @activity_errors
    def transition(self, issue_key: str, role: StatusRole) -> bool:
        names = statuses(self.settings, mapping_for(self.settings, issue_key)[1])
        return transition(jira_client(self.settings), issue_key, getattr(names, role))

    @activity.defn(name="implement_comment_mr")
    @activity_errors
    def comment_mr(self, issue_key: str, web_url: str, run_id: str, tests_line: str) -> bool:
        text = f"Draft merge request opened by the Copilot agent: {web_url}\n{tests_line}"
        return comment(jira_client(self.settings), issue_key, text, comment_tag("mr", run_id))

    @activity.defn(name="implement_report_failure")
    @activity_errors
    def report_failure(self, issue_key: str, workflow_id: str, run_id: str, reason: str) -> str:
        """One clear comment, then the issue leaves "In Progress" for a known state: JIRA_FAILED_STATUS
        (or the project's failed_status), else back to the trigger status with the FAILED_LABEL
        that keeps the poller from picking it up again until a human removes it."""
        client = jira_client(self.settings)
        _, mapping = mapping_for(self.settings, issue_key)
        names = statuses(self.settings, mapping)
        target = names.failed or names.trigger
        retry_hint = (
            f"move it to '{names.trigger}' again to retry"
            if names.failed
            else f"remove the label '{FAILED_LABEL}' to let the agent retry"
        )
        text = (
            f"The Copilot agent could not implement this issue: {reason}\n"
            f"Workflow: {workflow_id} (Temporal Web UI). The issue was moved to '{target}'; {retry_hint}."
        )
        comment(client, issue_key, text, comment_tag("failed", run_id))
        if not names.failed:
            add_label(client, issue_key, FAILED_LABEL)
        try:
            transition(client, issue_key, target)
        except PermanentError as exc:
            # The comment says what happened; a missing transition must not hide that.
            log.warning("%s", exc)
            return f"commented; not moved: {exc}"
        return f"moved to {target}"

    # --- the change -------------------------------------------------------------------------------
    @activity.defn(name="implement_change")
    @activity_errors
    async def implement_change(self, data: ImplementRunInput) -> ImplementRunResult:
        info = activity.info()
        remembered = _remembered(info.heartbeat_details)
        run_dir = self.settings.work_path / (
            f"push-{safe_name(data.workflow_id, 30)}-{hashlib.sha256(data.run_id.encode()).hexdigest()[:10]}"
        )
        await asyncio.to_thread(shutil.rmtree, run_dir, True)
        try:
            prepared = await asyncio.to_thread(self._prepare, data, run_dir / "repo")
            repo, project, target_sha, taken, own = prepared
            if own is not None:
                if remembered is not None and remembered.commit_sha == own[1]:
                    return remembered
                return _recovered(project, own)
            branch = next((b for b in commits.branch_candidates(data.issue_key) if b not in taken), None)
            if branch is None:
                raise PermanentError(f"all agent/{data.issue_key.lower()}-N branch names are taken")
            if rules := matching_rules(project["protected"], branch):
                # The agent pushes with its own rights; a protected branch is for people to decide.
                names = ", ".join(str(r.get("name")) for r in rules)
                raise PermanentError(
                    f"branch {branch} is protected in {project['path']} ({names}); the agent only pushes "
                    "to unprotected branches",
                    kind="ProtectedBranch",
                )
            result, criteria = await self._run_agent(data, project, target_sha, info.activity_id)
            implementation = next((r for r in result.reports if isinstance(r, Implementation)), None)
            summary = implementation.summary if implementation else result.final_message[:4000]
            base = ImplementRunResult(
                status="no_change",
                project_id=project["id"],
                target_branch=project["target_branch"],
                agent_summary=summary[:4000],
                tokens_used=tokens_used(result.usage),
                criteria=await asyncio.to_thread(
                    _criteria_evidence, criteria, implementation, result.patch or "", result.tests, repo
                ),
            )
            if result.patch_too_large:
                # The same issue would produce the same oversized change again: not retried.
                raise PermanentError(
                    f"the agent's change is over {MAX_PATCH_BYTES // (1024 * 1024)} MiB",
                    kind="ChangeTooLarge",
                )
            if not result.patch:
                return base
            title = commits.commit_title(
                data.issue_key, implementation.commit_summary if implementation else "implement the issue"
            )
            sha = await asyncio.to_thread(
                self._commit_and_push, repo, run_dir, result.patch, branch, data, title, summary, result.tests
            )
            pushed = base.model_copy(
                update={
                    "status": "pushed",
                    "branch": branch,
                    "commit_sha": sha,
                    "commit_title": title,
                    "tests": result.tests,
                }
            )
            # Remembered for a retry of this attempt's activity (worker killed before returning).
            activity.heartbeat(pushed.model_dump(mode="json"))
            return pushed
        except GitError as exc:
            if exc.transient:
                raise
            raise PermanentError(str(exc), kind="GitError") from exc
        finally:
            await asyncio.to_thread(shutil.rmtree, run_dir, True)

    def _prepare(
        self, data: ImplementRunInput, dest: Path
    ) -> tuple[Path, dict[str, Any], str, set[str], tuple[str, str, str] | None]:
        """Clone the target branch plus any existing agent/<key>* branches; find our own earlier push."""
        mapping, project, target_sha = issue_target(self.settings, data.issue_key)
        token = credential_token(self.settings, mapping.credential_ref)
        repo = clone(
            project.http_url_to_repo,
            dest,
            token=token,
            sha=target_sha,
            branches=[mapping.target_branch],
            author=self._author(),
        )
        prefix = f"agent/{data.issue_key.lower()}"
        git(repo, "fetch", "--quiet", "--no-tags", "origin",
            f"+refs/heads/{prefix}*:refs/remotes/origin/{prefix}*", token=token)  # fmt: skip
        listing = git(
            repo, "for-each-ref", "--format=%(refname:strip=3) %(objectname)", "refs/remotes/origin/agent/"
        )
        heads = dict(line.split(" ", 1) for line in listing.splitlines() if line.strip())
        own = None
        for branch in commits.branch_candidates(data.issue_key):
            if branch in heads:
                message = git(repo, "log", "-1", "--format=%B", heads[branch])
                if commits.is_own_commit(message, data.issue_key, data.run_id):
                    own = (branch, heads[branch], message)
                    break
        info = {
            "id": project.id,
            "path": project.path_with_namespace,
            "clone_url": project.http_url_to_repo,
            "target_branch": mapping.target_branch,
            "credential": mapping.credential_ref,
            "test_command": mapping.test_command,
            "protected": [r.attributes for r in project.protectedbranches.list(get_all=True)],
        }
        return repo, info, target_sha, set(heads), own

    async def _run_agent(
        self, data: ImplementRunInput, project: dict[str, Any], target_sha: str, activity_id: str
    ):
        issue = await asyncio.to_thread(read_issue, jira_client(self.settings), data.issue_key)
        task = ImplementTask(
            repo=RepoRef(
                clone_url=project["clone_url"],
                head_sha=target_sha,
                branches=[project["target_branch"]],
                credential=project.get("credential", "default"),
            ),
            project_path=project["path"],
            issue_key=data.issue_key,
            summary=issue["summary"],
            description=issue["description"],
            test_command=project["test_command"],
            plan=data.plan,
            criteria=acceptance_criteria(issue["description"]),
            **self.settings.run_options_for(project["path"], project["id"]),
        )
        try:
            result = await heartbeating(
                run_agent(self.executor, task, run_id=f"{data.workflow_id}-{activity_id}")
            )
            return result, task.criteria
        except ValueError as exc:
            raise PermanentError(f"agent run refused: {exc}"[:500], kind="ConfigurationError") from exc

    def _commit_and_push(
        self,
        repo: Path,
        run_dir: Path,
        patch: str,
        branch: str,
        data: ImplementRunInput,
        title: str,
        summary: str,
        tests: Any,
    ) -> str:
        sha = commit_patch(
            repo,
            run_dir,
            patch,
            name="change.patch",  # outside the clone, so it is not part of the commit
            title=title,
            summary=summary,
            tests=tests,
            issue_key=data.issue_key,
            workflow_id=data.workflow_id,
            run_id=data.run_id,
        )
        # Not forced: if the name was taken meanwhile the push fails and the retry picks the next one.
        push_head(repo, branch, self._token(data.issue_key))
        return sha

    # --- the MR -----------------------------------------------------------------------------------
    @activity.defn(name="implement_open_mr")
    @activity_errors
    def open_mr(self, data: OpenMRInput) -> OpenMRResult:
        activity.heartbeat()  # a dead worker is noticed within the heartbeat timeout, not minutes later
        run = data.run
        gl = gitlab_client(self.settings, self._credential(data.issue_key))
        project = gl.projects.get(run.project_id)
        check_served(self.settings, project)
        existing = project.mergerequests.list(source_branch=run.branch, state="opened", get_all=False)
        if existing:
            return OpenMRResult(iid=existing[0].iid, web_url=existing[0].web_url, created=False)
        activity.heartbeat()
        description, marker = render_description(
            issue_key=data.issue_key,
            issue_url=f"{self.settings.jira_url}/browse/{data.issue_key}",
            issue_summary=data.issue_summary,
            agent_summary=run.agent_summary,
            tests=run.tests,
            tests_note=run.tests_note,
            workflow_id=data.workflow_id,
            criteria=None if run.recovered else run.criteria,
            commit_sha=run.commit_sha,
            plan_note=data.plan_note,
        )
        gl.auth()
        assert gl.user is not None
        mr, created = GitLabWrites(gl, gl.user.id).merge_request(
            project,
            source_branch=run.branch,
            target_branch=run.target_branch,
            # With the review loop on, the MR starts as a draft whatever AUTO_MERGE_ENABLED says: readiness
            # comes only after its own review is clean and the tests pass (workflows/review_loop.py).
            title=mr_title(
                data.issue_key,
                run.commit_title,
                draft=not self.settings.auto_merge_enabled or self.settings.implement_review_rounds > 0,
            ),
            description=description,
            marker=marker,
            remove_source_branch=True,
        )
        return OpenMRResult(iid=mr.iid, web_url=mr.web_url, created=created)


def _criteria_evidence(
    criteria: list[str], implementation: Implementation | None, patch: str, tests: Any, repo: Path
) -> list[CriterionResult]:
    """Each acceptance criterion with the evidence the service checked (core/acceptance.py)."""
    if not criteria:
        return []
    answers = {
        a.criterion: (a.status, list(a.tests), a.note)
        for a in (implementation.criteria if implementation else [])
    }
    changed = {m.group(2) for m in _PATCH_FILE.finditer(patch)}
    existing = set(git(repo, "ls-files").splitlines())
    mapped = map_evidence(
        criteria,
        answers,
        changed_files=changed,
        existing_files=existing,
        tests_ran=bool(tests and tests.ran),
        tests_passed=bool(tests and tests.ran and tests.exit_code == 0),
    )
    return [
        CriterionResult(criterion=m.criterion, covered=m.covered, tests=list(m.tests), reason=m.reason[:500])
        for m in mapped
    ]


_PATCH_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)


def _remembered(details: Any) -> ImplementRunResult | None:
    if not details:
        return None
    try:
        return ImplementRunResult.model_validate(details[0])
    except ValueError:
        return None


def _recovered(project: dict[str, Any], own: tuple[str, str, str]) -> ImplementRunResult:
    branch, sha, message = own
    title, summary, tests_line = commits.recovered_parts(message)
    return ImplementRunResult(
        status="pushed",
        project_id=project["id"],
        target_branch=project["target_branch"],
        branch=branch,
        commit_sha=sha,
        commit_title=title[:200],
        agent_summary=summary[:4000],
        tests_note=tests_line[:500],
        recovered=True,
    )
