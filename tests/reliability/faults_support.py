"""The fault-injection rig shared by `tests/reliability/test_fault_injection.py` (deterministic kill
points, fast) and `bench/bench_fault_injection.py` (random kill points, many runs).

Everything is real: a Temporal dev server of its own persisted to SQLite (`--db-filename`, so it can
be stopped and started again on the same port), the worker as a child process that is SIGKILLed,
the real Copilot CLI against the scripted model server, git over HTTP, python-gitlab and jira
against the stand-ins. Faults are injected only through the stand-ins' own fault APIs; the counting
subclasses below just tally what those APIs served, so the figures printed are what really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from contracts import temporal
from contracts.discussion import MRDiscussionInput
from contracts.ids import discussion_id, implement_id, review_id
from contracts.models import ReviewMRInput, Trigger
from contracts.settings import Settings
from contracts.temporal import review_search_attributes
from core import markers
from devenv.stack import AGENT, DEVELOPER, stack_settings
from devenv.temporal_server import TemporalDevServer
from devenv.worker_process import WorkerProcess
from standins.gitlab import GitLabStandIn
from standins.gitlab.faults import Fault, FaultPlan
from standins.jira import JiraStandIn
from standins.jira.faults import Fault as JiraFault
from standins.jira.faults import FaultInjector
from standins.model_server import ChatRequest, ModelServer, Reply, ScriptedBrain
from tests.flows.implement_support import JIRA_EMAIL, JIRA_TOKEN, agent_writes, unique_project_key

APP = "group/app"
SVC = "group/svc"
GATE_MAX_S = 180.0  # a held model request never blocks a server thread forever
FAILURE_TAG = "gitlab-copilot-agent:failed:"
MR_TAG = "gitlab-copilot-agent:mr:"


# --- fault counters ---------------------------------------------------------------------------------
class CountingGitLabFaults(FaultPlan):
    """The GitLab stand-in's own fault plan, tallying every fault it serves by kind."""

    def __init__(self) -> None:
        super().__init__()
        self.served: Counter[str] = Counter()
        self.stalled: list[str] = []  # paths of the requests held by a stall
        self._tally = threading.Lock()

    def next_fault(self, path: str, method: str = "GET", *, targeted_only: bool = False) -> Fault | None:
        fault = super().next_fault(path, method, targeted_only=targeted_only)
        if fault is not None:
            with self._tally:
                self.served[fault.kind] += 1
                if fault.stall_s:
                    self.stalled.append(path)
        return fault

    def has_stalled(self, path_contains: str) -> bool:
        with self._tally:
            return any(path_contains in p for p in self.stalled)


class CountingJiraFaults(FaultInjector):
    def __init__(self) -> None:
        super().__init__()
        self.served: Counter[str] = Counter()
        self._tally = threading.Lock()

    def pick(self, method: str, path: str) -> JiraFault | None:
        fault = super().pick(method, path)
        if fault is not None:
            with self._tally:
                self.served[fault.kind] += 1
        return fault


# --- the scripted model ---------------------------------------------------------------------------
class GatedBrain:
    """Scripted replies per run (routed by a token in the run's prompt), and a gate per token that
    holds the first model request of each agent attempt: a deterministic "after the first model
    request" point to kill the worker at, with every held run inside its heartbeating agent activity."""

    def __init__(self) -> None:
        self.scripted = ScriptedBrain()
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Event] = {}
        self._tokens: list[str] = []
        self.first_requests: Counter[str] = Counter()

    def script(self, token: str, turns: Iterable[Reply], tool_offered: str) -> None:
        with self._lock:
            self._tokens.append(token)
        self.scripted.when(*turns, prompt_contains=token, tool_offered=tool_offered)

    def hold(self, tokens: Iterable[str]) -> None:
        with self._lock:
            for token in tokens:
                self._gates[token] = threading.Event()

    def release(self) -> None:
        with self._lock:
            gates, self._gates = list(self._gates.values()), {}
        for gate in gates:
            gate.set()

    def waiting(self, tokens: Iterable[str]) -> bool:
        """Every one of `tokens` has an agent attempt at the gate (or past it)."""
        with self._lock:
            return all(self.first_requests[t] > 0 for t in tokens)

    def __call__(self, request: ChatRequest) -> Reply:
        prompt = request.prompt
        with self._lock:
            token = next((t for t in self._tokens if t in prompt), None)
            gate = self._gates.get(token) if token else None
            if token and request.turn == 0:
                self.first_requests[token] += 1
        if gate is not None and request.turn == 0:
            gate.wait(GATE_MAX_S)
        return self.scripted(request)


# --- the cases ------------------------------------------------------------------------------------
@dataclass
class ReviewCase:
    index: int
    token: str
    iid: int
    sha: str
    workflow_id: str
    titles: list[str]


@dataclass
class DiscussionCase:
    index: int
    token: str
    iid: int  # the MR of a review case
    note_id: int
    workflow_id: str


@dataclass
class ImplementCase:
    index: int
    token: str
    key: str
    workflow_id: str


def review_turns(token: str) -> tuple[list[str], list[Reply]]:
    """Two findings on lines of the MR's new file (inline) and one outside the diff (a general note)."""
    module = f"app/mod_{token.lower()}.py"
    found = [
        (module, 2, f"Unchecked input in {token}"),
        (module, 6, f"Missing error handling in {token}"),
        ("README.md", 1, f"Undocumented module {token}"),
    ]
    turns = [
        Reply.call(
            "reviewer-report_finding", file=f, line=n, severity="major", title=t, body="Why it matters."
        )
        for f, n, t in found
    ]
    turns.append(Reply.call("reviewer-finish_review", summary=f"Reviewed {token}."))
    return [t for _, _, t in found], turns


def module_text(token: str) -> str:
    return "\n".join(
        [
            f"# {token}",
            "def parse(value):",
            "    return int(value)",
            "",
            "",
            "def load(path):",
            "    return open(path).read()",
            "",
        ]
    )


# --- the rig --------------------------------------------------------------------------------------
@dataclass
class Figures:
    worker_kills: int = 0
    temporal_restarts: int = 0
    model_failures: int = 0
    model_stalls: int = 0
    kill_points: list[str] = field(default_factory=list)


class FaultRig:
    """Temporal (own, persisted), stand-ins, the worker process, and the runs under test."""

    def __init__(self, root: Path, *, agent_slots: int = 8) -> None:
        self.root = root
        self.temporal = TemporalDevServer(db_file=root / "temporal.db", log_file=root / "temporal.log")
        self.gitlab = GitLabStandIn(root / "gitlab")
        self.gitlab.faults = CountingGitLabFaults()
        self.jira = JiraStandIn()
        self.jira.faults = CountingJiraFaults()
        self.brain = GatedBrain()
        self.model = ModelServer(brain=self.brain)
        self.agent_slots = agent_slots
        self.figures = Figures()
        self.reviews: list[ReviewCase] = []
        self.discussions: list[DiscussionCase] = []
        self.implementations: list[ImplementCase] = []
        self.jira_project = unique_project_key()
        self.settings: Settings | None = None
        self.client: Client | None = None
        self.worker: WorkerProcess | None = None

    # --- lifecycle ---
    async def start(self) -> FaultRig:
        self.temporal.start()
        self.gitlab.start()
        self.jira.start()
        self.model.start()
        agent = self.gitlab.add_user(AGENT, name="Copilot Agent")
        self.gitlab.add_user(DEVELOPER, name="Dev Eloper")
        unique = {".test-id": uuid.uuid4().hex}
        members = {AGENT: 30, DEVELOPER: 30}
        self.gitlab.create_project(APP, {"README.md": "# App\n", **unique}, members=members)
        svc = {
            "README.md": "# Service\n",
            "calc.py": "def add(a, b):\n    return a + b\n",
            "tests/__init__.py": "",
            **unique,
        }
        self.gitlab.create_project(SVC, svc, members=members)
        self.jira.add_account(JIRA_EMAIL, JIRA_TOKEN, "Copilot Agent")
        self.jira.add_project(self.jira_project, "Service")
        self.settings = stack_settings(
            temporal_address=self.temporal.address,
            task_queue=f"faults-{uuid.uuid4().hex[:8]}",
            gitlab=self.gitlab,
            agent_token=agent.token,
            model=self.model,
            work=self.root / "work",
            jira_url=self.jira.url,
            jira_email=JIRA_EMAIL,
            jira_api_token=JIRA_TOKEN,
            jira_project_map={self.jira_project: {"repo": SVC, "target_branch": "main"}},
            plan_approval="off",  # these flows are about other guardrails
            implement_review_rounds=0,
            max_concurrent_agent_runs=self.agent_slots,
            max_agent_runs_per_project=self.agent_slots,
        )
        self.client = await temporal.connect(self.settings)
        self.worker = WorkerProcess(self.settings, log_file=self.root / "worker.log").start()
        return self

    def stop(self) -> None:
        self.brain.release()
        if self.worker is not None:
            self.worker.kill()
        for stop in (self.model.stop, self.jira.stop, self.gitlab.stop, self.temporal.stop):
            with contextlib.suppress(Exception):
                stop()

    # --- the runs ---
    def add_review(self) -> ReviewCase:
        index = len(self.reviews) + 1
        token = f"FIR{index:03d}Z"
        branch = f"feature-{index}"
        self.gitlab.commit(
            APP, branch, {f"app/mod_{token.lower()}.py": module_text(token)}, f"add {token}", author=DEVELOPER
        )
        mr = self.gitlab.create_mr(APP, branch, title=f"Add module {token}", author=DEVELOPER)
        titles, turns = review_turns(token)
        self.brain.script(token, turns, tool_offered="reviewer-finish_review")
        sha = self.gitlab.mr_json(APP, mr.iid)["sha"]
        pid = self.gitlab.store.project(APP).id
        case = ReviewCase(index, token, mr.iid, sha, review_id(pid, mr.iid, sha), titles)
        self.reviews.append(case)
        return case

    def add_discussion(self, review: ReviewCase) -> DiscussionCase:
        """A developer's question to the agent on the MR of `review`."""
        index = len(self.discussions) + 1
        token = f"FID{index:03d}Z"
        note = self.gitlab.add_note(APP, review.iid, DEVELOPER, f"@{AGENT} what does {token} do?")
        turns = [Reply.call("discussion-reply", body=f"{token} parses input."), Reply.text("ok")]
        self.brain.script(token, turns, tool_offered="discussion-reply")
        pid = self.gitlab.store.project(APP).id
        case = DiscussionCase(index, token, review.iid, note.id, discussion_id(pid, note.id))
        self.discussions.append(case)
        return case

    def add_implementation(self) -> ImplementCase:
        index = len(self.implementations) + 1
        token = f"FII{index:03d}Z"
        key = self.jira.create_issue(self.jira_project, f"Add function {token}", "Add it.", status="AI Ready")
        files = {f"f_{token.lower()}.py": f"def f_{token.lower()}():\n    return {index}\n"}
        turns = agent_writes(files, summary=f"Added {token}.", subject=f"add {token}")
        self.brain.script(token, turns, tool_offered="implementer-report_implementation")
        case = ImplementCase(index, token, key, implement_id(key))
        self.implementations.append(case)
        return case

    async def start_review(self, case: ReviewCase) -> None:
        assert self.client and self.settings
        pid = self.gitlab.store.project(APP).id
        await self.client.start_workflow(
            "ReviewMR",
            ReviewMRInput(project_id=pid, mr_iid=case.iid, head_sha=case.sha, trigger=Trigger.WEBHOOK),
            id=case.workflow_id,
            task_queue=self.settings.temporal_task_queue,
            search_attributes=review_search_attributes(pid, case.iid, case.sha, "webhook"),
        )

    async def start_discussion(self, case: DiscussionCase) -> None:
        assert self.client and self.settings
        pid = self.gitlab.store.project(APP).id
        await self.client.start_workflow(
            "MRDiscussion",
            MRDiscussionInput(project_id=pid, mr_iid=case.iid, note_id=case.note_id),
            id=case.workflow_id,
            task_queue=self.settings.temporal_task_queue,
        )

    async def start_implementation(self, case: ImplementCase) -> None:
        assert self.client and self.settings
        await self.client.start_workflow(
            "ImplementIssue",
            {"issue_key": case.key},
            id=case.workflow_id,
            task_queue=self.settings.temporal_task_queue,
        )

    # --- faults ---
    def kill_worker(self, point: str) -> None:
        assert self.worker is not None
        self.worker.kill()
        self.figures.worker_kills += 1
        self.figures.kill_points.append(point)

    def start_worker(self) -> None:
        assert self.worker is not None
        self.worker.start()

    def restart_temporal(self, down_s: float = 1.0) -> None:
        """Stop the dev server (SIGTERM) and start it again on the same port from its SQLite file."""
        self.temporal.stop()
        time.sleep(down_s)
        self.temporal.start(timeout=60)
        self.figures.temporal_restarts += 1

    def model_fail(self, n: int) -> None:
        self.model.fail_next(n, 500)
        self.figures.model_failures += n

    def model_stall(self, n: int, seconds: float) -> None:
        self.model.stall_next(n, seconds)
        self.figures.model_stalls += n

    # --- waiting ---
    async def wait_until(self, condition: Any, timeout: float, what: str) -> None:
        """Poll `condition` (sync or async) until true; TimeoutError naming `what` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            met = condition()
            if asyncio.iscoroutine(met):
                met = await met
            if met:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self.worker_log_tail()}")
            await asyncio.sleep(0.1)

    async def closed(self, workflow_id: str) -> bool:
        """The run has finished (a run that failed early never reaches a later kill point)."""
        assert self.client is not None
        try:
            description = await self.client.get_workflow_handle(workflow_id).describe()
        except Exception:  # noqa: BLE001 - the server may be restarting: not known to be closed
            return False
        return description.status != WorkflowExecutionStatus.RUNNING

    async def wait_all(self, timeout: float) -> dict[str, WorkflowExecutionStatus]:
        """The final status of every run (waiting through Temporal outages)."""
        assert self.client is not None
        ids = [c.workflow_id for c in [*self.reviews, *self.discussions, *self.implementations]]
        done: dict[str, WorkflowExecutionStatus] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(ids):
            for workflow_id in ids:
                if workflow_id in done:
                    continue
                with contextlib.suppress(Exception):  # the server may be restarting
                    description = await self.client.get_workflow_handle(workflow_id).describe()
                    if description.status != WorkflowExecutionStatus.RUNNING:
                        done[workflow_id] = description.status
            if time.monotonic() > deadline:
                missing = sorted(set(ids) - set(done))
                raise TimeoutError(f"runs still open after {timeout}s: {missing}\n{self.worker_log_tail()}")
            await asyncio.sleep(0.25)
        return done

    def worker_log_tail(self, lines: int = 30) -> str:
        """The worker's last log lines, one short line each (tracebacks cut), for a failure message."""
        log = self.root / "worker.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n".join(line[:300] for line in text.splitlines()[-lines:])


# --- the invariants -------------------------------------------------------------------------------
@dataclass
class Audit:
    runs: int = 0
    completed: int = 0
    failed_cleanly: int = 0
    problems: list[str] = field(default_factory=list)
    duplicate_notes: int = (
        0  # findings (by fingerprint), summaries, failure notes, replies, any identical note
    )
    duplicate_awards: int = 0
    duplicate_branches: int = 0
    duplicate_mrs: int = 0
    duplicate_jira_comments: int = 0
    findings_expected: int = 0
    findings_posted: int = 0
    failure_reasons: list[str] = field(default_factory=list)  # of the runs that failed cleanly

    @property
    def duplicates(self) -> int:
        return (
            self.duplicate_notes
            + self.duplicate_awards
            + self.duplicate_branches
            + self.duplicate_mrs
            + self.duplicate_jira_comments
        )


def _own(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for n in notes if n["author"]["username"] == AGENT]


def audit_review(rig: FaultRig, case: ReviewCase, status: WorkflowExecutionStatus, audit: Audit) -> None:
    notes = _own(rig.gitlab.notes(APP, case.iid))
    summaries = [n for n in notes if markers.parse(n["body"], markers.SUMMARY)]
    failures = [n for n in notes if markers.parse(n["body"], markers.FAILURE)]
    fingerprints = Counter(
        markers.parse(d["notes"][0]["body"], markers.FINDING)["fp"]  # type: ignore[index]
        for d in rig.gitlab.discussions(APP, case.iid)
        if d["notes"][0]["author"]["username"] == AGENT
        and markers.parse(d["notes"][0]["body"], markers.FINDING) is not None
    )
    audit.duplicate_notes += max(0, len(summaries) - 1) + max(0, len(failures) - 1)
    audit.duplicate_notes += sum(n - 1 for n in fingerprints.values())
    # Any other write twice (a resolution or discussion reply, ...): two agent notes with one body.
    others = Counter(
        n["body"]
        for n in notes
        if not any(markers.parse(n["body"], k) for k in (markers.SUMMARY, markers.FAILURE, markers.FINDING))
    )
    audit.duplicate_notes += sum(n - 1 for n in others.values())
    audit.duplicate_awards += _duplicate_awards(rig, case.iid)
    name = f"review {case.token} (!{case.iid})"
    if status == WorkflowExecutionStatus.COMPLETED:
        audit.completed += 1
        finding_bodies = [
            d["notes"][0]["body"]
            for d in rig.gitlab.discussions(APP, case.iid)
            if d["notes"][0]["author"]["username"] == AGENT
            and markers.parse(d["notes"][0]["body"], markers.FINDING) is not None
        ]
        audit.findings_expected += len(case.titles)
        for title in case.titles:
            if any(body.startswith(f"**[major]** {title}") for body in finding_bodies):
                audit.findings_posted += 1
            else:
                audit.problems.append(f"{name}: finding {title!r} lost")
        if len(summaries) != 1:
            audit.problems.append(f"{name}: {len(summaries)} summary notes")
        if failures:
            audit.problems.append(f"{name}: completed but has a failure note")
    elif status == WorkflowExecutionStatus.FAILED and len(failures) == 1:
        audit.failed_cleanly += 1
        audit.failure_reasons.append(f"{name}: {_reason(failures[0]['body'])}")
    else:
        audit.problems.append(f"{name}: {status.name} with {len(failures)} failure note(s)")


def _duplicate_awards(rig: FaultRig, iid: int, note_id: int | None = None) -> int:
    awards = Counter((a.name, a.user.username) for a in rig.gitlab.award_emoji(APP, iid, note_id))
    return sum(n - 1 for n in awards.values())


def audit_discussion(
    rig: FaultRig, case: DiscussionCase, status: WorkflowExecutionStatus, audit: Audit
) -> None:
    thread = next(
        d for d in rig.gitlab.discussions(APP, case.iid) if any(n["id"] == case.note_id for n in d["notes"])
    )
    replies = [n for n in _own(thread["notes"]) if markers.parse(n["body"], markers.REPLY)]
    audit.duplicate_notes += max(0, len(replies) - 1)
    audit.duplicate_awards += _duplicate_awards(rig, case.iid, case.note_id)
    name = f"discussion {case.token} (note {case.note_id})"
    if status == WorkflowExecutionStatus.COMPLETED:
        audit.completed += 1
        if len(replies) != 1 or case.token not in replies[0]["body"]:
            audit.problems.append(f"{name}: {len(replies)} replies")
    elif status == WorkflowExecutionStatus.FAILED and len(replies) == 1:
        audit.failed_cleanly += 1  # the reply is the failure message
        audit.failure_reasons.append(f"{name}: {_reason(replies[0]['body'])}")
    else:
        audit.problems.append(f"{name}: {status.name} with {len(replies)} replies")


def audit_implementation(
    rig: FaultRig, case: ImplementCase, status: WorkflowExecutionStatus, audit: Audit
) -> None:
    prefix = f"agent/{case.key.lower()}"
    branches = [
        b for b in rig.gitlab.store.project(SVC).repo.branches() if b == prefix or b.startswith(prefix + "-")
    ]
    svc = rig.gitlab.store.project(SVC)
    with rig.gitlab.store.lock:
        mrs = [
            mr
            for (pid, _), mr in rig.gitlab.store.mrs.items()
            if pid == svc.id and mr.source_branch in branches
        ]
    comments = [str(c.body) for c in rig.jira.comments(case.key)]
    mr_comments = [c for c in comments if MR_TAG in c]
    failure_comments = [c for c in comments if FAILURE_TAG in c]
    audit.duplicate_branches += max(0, len(branches) - 1)
    audit.duplicate_mrs += max(0, len(mrs) - 1)
    audit.duplicate_jira_comments += max(0, len(mr_comments) - 1) + max(0, len(failure_comments) - 1)
    name = f"implementation {case.key}"
    if status == WorkflowExecutionStatus.COMPLETED:
        audit.completed += 1
        if len(mrs) != 1 or len(mr_comments) != 1:
            audit.problems.append(f"{name}: {len(mrs)} MRs, {len(mr_comments)} MR comments")
        elif rig.jira.issue(case.key).status != "In Review":
            audit.problems.append(f"{name}: issue left in {rig.jira.issue(case.key).status!r}")
    elif status == WorkflowExecutionStatus.FAILED and len(failure_comments) == 1:
        audit.failed_cleanly += 1
        audit.failure_reasons.append(f"{name}: {_reason(failure_comments[0])}")
    else:
        audit.problems.append(f"{name}: {status.name} with {len(failure_comments)} failure comment(s)")


def _reason(message: str) -> str:
    """The reason a failure note ("could not be completed (REASON)") or Jira comment ("could not
    implement this issue: REASON") gives."""
    found = re.search(r"issue: ([^\n]{1,200})", message) or re.search(r"\(([^()]{3,200})\)", message)
    return found.group(1) if found else message.splitlines()[0][:200]


def audit_all(rig: FaultRig, statuses: dict[str, WorkflowExecutionStatus]) -> Audit:
    audit = Audit(runs=len(statuses))
    for case in rig.reviews:
        audit_review(rig, case, statuses[case.workflow_id], audit)
    for case in rig.discussions:
        audit_discussion(rig, case, statuses[case.workflow_id], audit)
    for case in rig.implementations:
        audit_implementation(rig, case, statuses[case.workflow_id], audit)
    return audit


def figures_block(rig: FaultRig, audit: Audit, seconds: float, title: str) -> str:
    gitlab, jira, fig = rig.gitlab.faults.served, rig.jira.faults.served, rig.figures  # type: ignore[attr-defined]
    rows = [
        (
            "runs",
            f"{audit.runs} ({len(rig.reviews)} ReviewMR, {len(rig.discussions)} MRDiscussion, "
            f"{len(rig.implementations)} ImplementIssue)",
        ),
        ("completed / failed cleanly", f"{audit.completed} / {audit.failed_cleanly}"),
        ("worker SIGKILLs", f"{fig.worker_kills} ({', '.join(fig.kill_points) or '-'})"),
        ("Temporal server restarts", str(fig.temporal_restarts)),
        ("GitLab faults served", _kinds(gitlab)),
        ("GitLab REST requests", str(len(rig.gitlab.requests))),
        ("Jira faults served", _kinds(jira)),
        ("Jira requests", str(len(rig.jira.requests))),
        (
            "model failures / stalls",
            f"{rig.model.failures_served} of {fig.model_failures} / {fig.model_stalls}",
        ),
        ("findings posted / scripted", f"{audit.findings_posted} / {audit.findings_expected}"),
        ("duplicate notes / awards", f"{audit.duplicate_notes} / {audit.duplicate_awards}"),
        ("duplicate branches / MRs", f"{audit.duplicate_branches} / {audit.duplicate_mrs}"),
        ("duplicate Jira comments", str(audit.duplicate_jira_comments)),
        ("duplicates found", str(audit.duplicates)),
        ("problems", str(len(audit.problems))),
        ("wall time", f"{seconds:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"== {title}", *(f"  {k.ljust(width)}  {v}" for k, v in rows)]
    lines += [f"  failed cleanly: {r}" for r in audit.failure_reasons]
    lines += [f"  ! {p}" for p in audit.problems]
    return "\n".join(lines)


def _kinds(counter: Counter[str]) -> str:
    total = sum(counter.values())
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(counter.items()))
    return f"{total} ({parts})" if counter else "0"
