"""Activities of the reviewer ↔ implementer loop on the agent's own draft MR.

After ReviewMR (a child run) has reviewed the MR, `review_findings` reads what is open from GitLab
itself (the review's result is counts; the threads are the truth, whoever posted them). A fix
round (`answer_findings`) runs the implementer on the MR branch with those findings: it must answer
each with `report_answer` — "fixed" (then its change must exist and touch the finding's file) or
"dismissed" with a reason. The service pushes the change (never forced) and replies in each thread:
"Fixed in <sha>: ..." or "Not changed: ...". A finding without a valid answer gets no reply at all:
nothing ever says "acknowledged". `finish_loop` marks the MR ready only when the setting allows it,
the latest review left no blocking finding open and the service's own test run passed; otherwise
the MR stays a draft with one status note saying why. Nothing here approves or merges.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.agent_commit import commit_patch
from activities.authority import check_served
from activities.git_push import push_head
from activities.gitlab_api import gitlab_client
from activities.gitlab_writes import GitLabWrites
from activities.heartbeat import heartbeating
from activities.http_errors import PermanentError, activity_errors
from activities.jira_api import mapping_for
from contracts.agent_tasks import OpenFinding, RepoRef, tokens_used
from contracts.implement import (
    FindingReply,
    FixRoundInput,
    FixRoundResult,
    LoopOutcome,
    LoopPolicy,
    LoopResult,
    ReviewFindings,
)
from contracts.reports import FindingAnswer, Implementation
from contracts.settings import Settings
from core import implement_commit as commits
from core import markers
from core.outbound_text import model_text
from core.review_memory import read_memory
from executors.base import AgentExecutor, safe_name
from executors.git_repo import GitError, clone, git
from executors.tasks import ImplementTask
from telemetry.agent_run import run_agent

ANSWER = markers.IMPLEMENT_ANSWER
STATUS = "implement-status"
SEVERITIES = ("info", "minor", "major", "critical")
_SEVERITY = re.compile(r"^\*\*\[([a-z]+)\]\*\*")
_PATCH_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)


def blocks(severity: str, threshold: str) -> bool:
    rank = {name: n for n, name in enumerate(SEVERITIES)}
    return rank.get(severity, 1) >= rank.get(threshold, 1)


class ReviewLoopActivities:
    def __init__(self, settings: Settings, executor: AgentExecutor) -> None:
        self.settings = settings
        self.executor = executor

    def _token(self) -> str | None:
        token = self.settings.gitlab_token
        return token.get_secret_value() if token else None

    def _mr(self, project_id: int, mr_iid: int) -> tuple[Any, Any, Any]:
        gl = gitlab_client(self.settings)
        project = gl.projects.get(project_id)
        check_served(self.settings, project)
        gl.auth()
        return gl, project, project.mergerequests.get(mr_iid)

    @activity.defn(name="implement_loop_policy")
    @activity_errors
    def loop_policy(self) -> LoopPolicy:
        s = self.settings
        return LoopPolicy(
            rounds=s.implement_review_rounds,
            blocking_severity=s.implement_blocking_severity,
            may_mark_ready=s.implement_mark_ready or s.auto_merge_enabled,
        )

    @activity.defn(name="implement_review_findings")
    @activity_errors
    def review_findings(self, project_id: int, mr_iid: int, threshold: str) -> ReviewFindings:
        gl, _, mr = self._mr(project_id, mr_iid)
        assert gl.user is not None
        discussions = [d.attributes for d in mr.discussions.list(iterator=True)]
        memory = read_memory(discussions, gl.user.id, mr.sha)
        by_id = {str(d["id"]): d for d in discussions}
        blocking: list[OpenFinding] = []
        dismissed: list[str] = []
        verified: list[str] = []
        other = 0
        for thread in memory.open_threads:
            notes = [n for n in by_id.get(thread.discussion_id, {}).get("notes") or [] if not n.get("system")]
            if not notes:
                continue
            if any(markers.has(n.get("body") or "", ANSWER, action="dismissed") for n in notes[1:]):
                dismissed.append(thread.title[:300])  # answered with a reason: not blocking
                continue
            if _verified_fixed(notes[1:], gl.user.id):
                # The review re-checked the fix on a later head and said so in the thread; under
                # RESOLUTION_BEHAVIOR=suggest the thread stays open for a human to resolve.
                verified.append(thread.title[:300])
                continue
            found = _SEVERITY.match(notes[0].get("body") or "")
            severity = found.group(1) if found else "minor"
            if not blocks(severity, threshold):
                other += 1
                continue
            blocking.append(
                OpenFinding(
                    thread_id=thread.discussion_id,
                    severity=severity,
                    title=thread.title[:300],
                    file=thread.file,
                    line=thread.line,
                    body=thread.body[:2000],
                )
            )
        return ReviewFindings(
            head_sha=mr.sha,
            blocking=blocking[:30],
            other_open=other,
            dismissed=dismissed[:30],
            verified=verified[:30],
        )

    # --- a fix round -------------------------------------------------------------------------------
    @activity.defn(name="implement_answer_findings")
    @activity_errors
    async def answer_findings(self, data: FixRoundInput) -> FixRoundResult:
        info = activity.info()
        if info.heartbeat_details:
            try:
                return FixRoundResult.model_validate(info.heartbeat_details[0])  # pushed and replied
            except ValueError:
                pass
        digest = hashlib.sha256(f"{data.run_id}:{data.round}".encode()).hexdigest()[:10]
        run_dir = self.settings.work_path / f"fix-{safe_name(data.workflow_id, 30)}-{digest}"
        await asyncio.to_thread(shutil.rmtree, run_dir, True)
        try:
            checkout = await asyncio.to_thread(self._checkout, data, run_dir / "repo")
            if checkout is None:  # someone pushed meanwhile: the next review sees their head
                _, _, mr = await asyncio.to_thread(self._mr, data.project_id, data.mr_iid)
                return FixRoundResult(status="moved_on", head_sha=mr.sha)
            repo, task, branch = checkout
            result = await heartbeating(
                run_agent(
                    self.executor, task, run_id=f"{data.workflow_id}-fix{data.round}-{info.activity_id}"
                )
            )
            implementation = next((r for r in result.reports if isinstance(r, Implementation)), None)
            answers = {r.thread_id: r for r in result.reports if isinstance(r, FindingAnswer)}
            sha = ""
            if result.patch:
                title = commits.commit_title(data.issue_key, f"address review round {data.round}")
                summary = implementation.summary if implementation else "Answered the review's findings."
                sha = await asyncio.to_thread(
                    self._commit_and_push,
                    repo,
                    run_dir,
                    result.patch,
                    branch,
                    data,
                    title,
                    summary,
                    result.tests,
                )
            changed = {m.group(2) for m in _PATCH_FILE.finditer(result.patch or "")}
            replies = await asyncio.to_thread(self._reply, data, answers, sha, changed)
            done = FixRoundResult(
                status="pushed" if sha else "no_change",
                head_sha=sha or data.head_sha,
                commit_sha=sha,
                replies=replies,
                tests=result.tests,
                tokens_used=tokens_used(result.usage),
            )
            activity.heartbeat(done.model_dump(mode="json"))
            return done
        except GitError as exc:
            if exc.transient:
                raise
            raise PermanentError(str(exc), kind="GitError") from exc
        finally:
            await asyncio.to_thread(shutil.rmtree, run_dir, True)

    def _checkout(self, data: FixRoundInput, dest: Path) -> tuple[Path, ImplementTask, str] | None:
        _, mapping = mapping_for(self.settings, data.issue_key)
        _, project, mr = self._mr(data.project_id, data.mr_iid)
        if mr.sha != data.head_sha:
            return None
        branch = mr.source_branch
        target = mr.target_branch
        repo = clone(
            project.http_url_to_repo, dest, token=self._token(), sha=mr.sha, branches=[branch, target]
        )
        # Skills, agents and instructions of a fix round come from the target branch: the MR branch
        # holds what the agent wrote in earlier rounds, and must not configure its next run.
        config_sha = git(repo, "rev-parse", f"refs/remotes/origin/{target}").strip()
        task = ImplementTask(
            repo=RepoRef(clone_url=project.http_url_to_repo, head_sha=mr.sha, branches=[branch, target]),
            project_path=project.path_with_namespace,
            issue_key=data.issue_key,
            summary=str(mr.title)[:1000],
            test_command=mapping.test_command,
            findings=data.findings,
            review_round=data.round,
            config_sha=config_sha,
            **self.settings.run_options_for(project.path_with_namespace, project.id),
        )
        return repo, task, branch

    def _commit_and_push(
        self,
        repo: Path,
        run_dir: Path,
        patch: str,
        branch: str,
        data: FixRoundInput,
        title: str,
        summary: str,
        tests: Any,
    ) -> str:
        commit_patch(
            repo,
            run_dir,
            patch,
            name="fix.patch",
            title=title,
            summary=summary,
            tests=tests,
            issue_key=data.issue_key,
            workflow_id=data.workflow_id,
            run_id=data.run_id,
        )
        # Not forced: a push by someone else in between fails this attempt instead of erasing theirs.
        return push_head(repo, branch, self._token())

    def _reply(
        self, data: FixRoundInput, answers: dict[str, FindingAnswer], sha: str, changed: set[str]
    ) -> list[FindingReply]:
        gl, _, mr = self._mr(data.project_id, data.mr_iid)
        assert gl.user is not None
        writes = GitLabWrites(gl, gl.user.id)
        replies: list[FindingReply] = []
        for finding in data.findings:
            answer = answers.get(finding.thread_id)
            action, reason = (answer.action, answer.reason) if answer else ("unanswered", "no answer given")
            if action == "fixed" and not sha:
                action, reason = "unanswered", f"claimed fixed without any change ({reason[:200]})"
            elif action == "fixed" and finding.file and finding.file not in changed:
                action, reason = "unanswered", f"claimed fixed, but {finding.file} is not in the change"
            replies.append(
                FindingReply(
                    thread_id=finding.thread_id, title=finding.title, action=action, reason=reason[:500]
                )
            )  # type: ignore[arg-type]
            if action == "unanswered":
                continue  # never an empty "acknowledged": the status note lists it instead
            text = (
                f"Fixed in {sha[:12]}: {model_text(reason)}"
                if action == "fixed"
                else f"Not changed: {model_text(reason)}"
            )
            marker = markers.marker(ANSWER, action=action, round=str(data.round), run=data.run_id)
            writes.reply(mr, finding.thread_id, text, marker)
        return replies

    # --- the end of the loop -----------------------------------------------------------------------
    @activity.defn(name="implement_finish_review_loop")
    @activity_errors
    def finish_loop(self, data: LoopOutcome) -> LoopResult:
        """Ready only when allowed, reviewed clean and tests passing; else a draft that says why."""
        gl, _, mr = self._mr(data.project_id, data.mr_iid)
        assert gl.user is not None
        writes = GitLabWrites(gl, gl.user.id)
        reasons: list[str] = []
        if data.review_failed:
            reasons.append(f"the latest review failed ({data.review_failed})")
        if data.blocking:
            listed = "; ".join(data.blocking[:10])
            reasons.append(
                f"{len(data.blocking)} blocking finding(s) still open after {data.rounds} round(s): {listed}"
            )
        if not data.tests_passing:
            reasons.append(f"the service's test run did not pass ({data.tests_line or 'tests not run'})")
        if mr.sha != data.head_sha:
            reasons.append("the branch moved on after the last review")
        if data.harness_edited:
            reasons.append(
                f"the change edits the test harness ({', '.join(data.harness_edited[:10])}): a person must look"
            )
        ready = not reasons and data.may_mark_ready
        if not reasons and not data.may_mark_ready:
            reasons.append(
                "the review is clean and the tests pass; IMPLEMENT_MARK_READY=false leaves readiness to a person"
            )
        lines = [
            "**Copilot agent: " + ("marked ready for review" if ready else "stays a draft") + "**",
            "",
            f"Reviews: {data.reviews}, fix rounds: {data.rounds}. {data.tests_line}",
        ]
        unanswered = [r for r in data.replies if r.action == "unanswered"]
        dismissed = [r for r in data.replies if r.action == "dismissed"]
        fixed = [r for r in data.replies if r.action == "fixed"]
        lines.append(
            f"Findings answered: {len(fixed)} fixed, {len(dismissed)} dismissed with a reason, {len(unanswered)} unanswered."
        )
        for reply in unanswered[:10]:
            lines.append(f"- not answered: {reply.title} ({reply.reason})")
        if reasons:
            lines += ["", "Why it stays a draft:", *(f"- {r}" for r in reasons)]
        lines += ["", "The agent never approves or merges; a person decides."]
        text = "\n".join(lines)
        marker = markers.marker(STATUS, workflow=data.workflow_id, sha=data.head_sha)
        if ready:
            writes.mark_ready(mr)
        writes.mr_note(mr, text, marker)
        return LoopResult(ready=ready, reason="; ".join(reasons)[:1000])


def _verified_fixed(replies: list[dict], agent_id: int) -> bool:
    """Whether the thread's latest word is the review's signed "resolved" verdict (the ledger's
    reply after re-checking the fix): a "not fixed" or "partly" verdict, or any human note after
    it (an objection, a question), makes the finding count as open again."""
    verified = False
    for note in replies:
        if note.get("system"):
            continue
        author = (note.get("author") or {}).get("id") if isinstance(note.get("author"), dict) else None
        if author != agent_id:
            verified = False
            continue
        verdict = markers.parse_signed(note.get("body") or "", markers.RESOLUTION)
        if verdict is not None:
            verified = verdict.get("state") == "resolved"
    return verified
