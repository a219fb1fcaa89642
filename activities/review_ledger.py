"""The finding ledger's part of a review (core/ledger.py, docs/adr/0023-finding-ledger.md).

`LedgerHooks` is used by `post_review`: it reads the previous ledger from the summary note and the
diff since the last reviewed head, filters the planned findings by the ledger's rules, advances the
ledger before publishing and hands the replies and resolutions it calls for to the publication (which
sends them with the findings: one batch), adds the new findings' threads after publishing, records
its metrics, and appends the Findings table and the signed ledger to the summary.

`LedgerActivities` keep a project's learned notes in its ProjectLearnings workflow.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.http_errors import activity_errors
from activities.review_publish import Answer
from contracts.ledger import Learning, Ledger, learnings_id
from contracts.models import PostReviewInput, PostReviewResult
from contracts.settings import Settings
from core import ledger as ledger_core
from core import ledger_gate, ledger_store, markers
from core.diff_positions import DiffIndex, DiffParseError
from core.ledger_diff import TreeDiff
from core.outbound_text import model_text
from core.review_memory import ReviewMemory
from core.review_post import FindingPlan
from telemetry import metrics

log = logging.getLogger(__name__)


def _seconds_between(start: str, end: str) -> float | None:
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max((b - a).total_seconds(), 0.0)


class LedgerHooks:
    def __init__(
        self, settings: Settings, project: Any, mr: Any, memory: ReviewMemory, data: PostReviewInput
    ) -> None:
        self.settings, self.project, self.mr, self.data = settings, project, mr, data
        self.previous: Ledger | None = ledger_store.load(memory.summary_body, data.project_id, data.mr_iid)
        self.first_review = memory.last_reviewed_sha is None
        self.diff: TreeDiff | None = None
        since = memory.last_reviewed_sha
        if since and since != data.head_sha:
            # The two trees, not the merge base: what changed since the last review, force-push or not.
            compare = project.repository_compare(since, data.head_sha, straight=True)
            self.diff = TreeDiff.from_compare(compare.get("diffs") or [])
        elif since:
            self.diff = TreeDiff()  # the same head again (a retried attempt): nothing is new
        self.codes: dict[str, tuple[str, str]] = {}  # fingerprint -> (code hash, category)
        self.repeats = 0
        self.held_back = 0
        self.step: ledger_core.Step | None = None
        self.now = ""

    # --- before posting ----------------------------------------------------------------------------
    def gate(self, plan: FindingPlan, changes: list[dict[str, Any]]) -> None:
        """Drop from `plan.to_post` what the ledger's rules do not let this review raise."""
        try:
            index: DiffIndex | None = DiffIndex.from_changes(changes, self.mr.diff_refs)
        except (DiffParseError, ValueError):
            index = None
        planned = []
        for item in plan.to_post:
            code = ledger_gate.code_hash(index, item.finding)
            self.codes[item.fingerprint] = (code, item.finding.category)
            planned.append((item.finding, item.fingerprint, code, item.finding.category))
        verdict = ledger_gate.admit(
            planned,
            self.previous,
            self.diff,
            first_review=self.first_review,
            critical_anywhere=self.settings.review_critical_anywhere,
        )
        plan.to_post = [plan.to_post[i] for i in verdict.admitted]
        self.repeats = plan.duplicates + verdict.repeats
        self.held_back = verdict.held_back
        plan.duplicates += verdict.repeats

    # --- before publishing: what the ledger answers ---------------------------------------------------
    # The ledger's replies and resolutions go out with the review's findings (in one batch of draft
    # notes when drafts are in use: one notification per review), so they are decided before anything
    # is published, from the MR as read before posting (`memory`). That is correct because a review's
    # own publication changes none of what the decisions read: it adds new threads, which the ledger
    # never steps in the review that raised them, and the answers themselves, which the decisions are.
    # A retried attempt reads the answers an earlier attempt published (its reply markers, the threads
    # it resolved) and leaves them out. The new threads' entries are added after publishing (`settle`),
    # when their IDs exist.
    def decide(self, memory: ReviewMemory, behavior: str) -> list[Answer]:
        """The ledger's step from the MR before posting, and the answers it calls for in the agent's
        threads; `behavior`: the project's RESOLUTION_BEHAVIOR (auto-resolve, suggest: reply only,
        off: neither)."""
        data, head = self.data, self.data.head_sha
        self.now = datetime.now(UTC).isoformat(timespec="seconds")
        step = ledger_core.advance(
            self.previous,
            memory,
            project_id=data.project_id,
            mr_iid=data.mr_iid,
            head=head,
            now=self.now,
            diff=self.diff,
            verdicts={v.thread_id: v for v in data.run.resolutions},
            posted=self._posted(memory),  # what an earlier attempt of this review published
            auto_resolve=behavior == "auto-resolve",
            tokens=data.run.tokens_used,
            repeats=self.repeats,
            held_back=self.held_back,
        )
        self.step = step
        answers = []
        for action in step.actions:
            thread = memory.thread(action.thread_id)
            if behavior == "off" or thread is None:
                continue
            reply = bool(action.reply) and head not in thread.resolution_replied_for
            resolve = action.resolve and not thread.resolved
            if not reply and not resolve:
                continue
            marker = markers.marker(
                markers.RESOLUTION, thread=thread.discussion_id, sha=head, state=action.kind
            )
            answers.append(
                Answer(
                    thread_id=thread.discussion_id,
                    text=model_text(action.reply, 4000) if reply else "",
                    marker=marker,
                    resolve=resolve,
                )
            )
        return answers

    def _posted(self, memory: ReviewMemory) -> list[ledger_core.NewFinding]:
        """This review's findings among the agent's threads in `memory`."""
        posted = []
        for thread in memory.own_threads:
            if thread.reviewed_sha == self.data.head_sha and thread.file and thread.line:
                code, category = self.codes.get(thread.fingerprint, ("", thread.category))
                posted.append(
                    ledger_core.NewFinding(
                        thread_id=thread.discussion_id,
                        fingerprint=thread.fingerprint,
                        severity=thread.severity,
                        category=category,
                        title=thread.title,
                        code=code,
                        file=thread.file,
                        line=int(thread.line),
                    )
                )
        return posted

    # --- after publishing ------------------------------------------------------------------------------
    def settle(self, memory: ReviewMemory, result: PostReviewResult) -> None:
        """Complete the step `decide` took with the threads this review's findings became (`memory`:
        the MR read back after publishing) and put the ledger on the result."""
        step = self.step
        assert step is not None, "decide() first"
        ledger_core.record_posted(step, memory, self._posted(memory), head=self.data.head_sha, now=self.now)
        for action in step.actions:
            result.resolved += action.kind == "resolved"
            result.partial += action.kind == "partial"
        result.ledger = step.ledger
        result.learned = step.learnings[:20]
        self._record_metrics(step)

    def _record_metrics(self, step: ledger_core.Step) -> None:
        if self.previous is not None and self.previous.last_sha == self.data.head_sha:
            return  # a retried attempt of a review already recorded
        project = str(self.data.project_id)
        for entry, event in step.transitions:
            labels = {
                "project": project,
                "state": event.state,
                "severity": entry.severity,
                "category": entry.category,
            }
            metrics.finding_transitions.add(1, labels)
            if event.state == "addressed" and not any(e.state == "addressed" for e in entry.history[:-1]):
                seconds = _seconds_between(entry.raised_at, event.at)
                if seconds is not None:
                    metrics.finding_time_to_address.record(
                        seconds, {"project": project, "severity": entry.severity}
                    )
        metrics.finding_repeats_prevented.add(self.repeats, {"project": project})
        metrics.finding_held_back.add(self.held_back, {"project": project})

    def summary(self, text: str) -> str:
        return ledger_store.with_ledger(text, self.step.ledger) if self.step is not None else text


class LedgerActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @activity.defn(name="project_learnings")
    @activity_errors
    async def project_learnings(self, project_id: int) -> list[Learning]:
        """The notes the project's reviews learned ([] before the first one)."""
        client: Client = activity.client()
        handle = client.get_workflow_handle(learnings_id(activity.info().task_queue, project_id))
        try:
            return await handle.query("learnings", result_type=list[Learning])
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return []
            raise
        except WorkflowQueryFailedError:
            log.warning("the learnings of project %s could not be read", project_id)
            return []

    @activity.defn(name="record_learnings")
    @activity_errors
    async def record_learnings(self, project_id: int, learnings: list[Learning]) -> int:
        client: Client = activity.client()
        for note in learnings:
            if note.project_id != project_id:
                continue  # a project's notes never go to another project
            await client.start_workflow(
                "ProjectLearnings",
                id=learnings_id(activity.info().task_queue, project_id),
                task_queue=activity.info().task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                start_signal="learn",
                start_signal_args=[note],
            )
        return len(learnings)
