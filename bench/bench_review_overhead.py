"""What the service adds to a review beyond the Copilot CLI's own run, and what bundles in parallel buy.

1. Overhead. A 20-file MR with 20 findings (the demo model reports a debug print in each file at
   once: an instant model) goes webhook -> API -> ReviewMR -> CLI -> published summary, 5 times
   (5 MRs). Each run's CLI time is taken from the very same run (the executor is wrapped and reads
   the CLI's own duration), so "beyond the CLI" is total minus the CLI of that run; its p50 is the
   figure. Target: <= 1.0 s.
2. Fan-out. A 300-file MR is reviewed in bundles with 4 agent slots
   (MAX_AGENT_RUNS_PER_PROJECT=4), and the same MR state (a copy branch, so the same bundles) with
   1 slot: one run after the other, the serial baseline. Target: parallel <= 1/3 of serial.

    .venv/bin/python bench/bench_review_overhead.py [--runs 5] [--files 300] [--skip-fanout]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activities import build_activities  # noqa: E402
from activities.review import ReviewActivities  # noqa: E402
from api.app import create_app  # noqa: E402
from bench.timeline import timeline  # noqa: E402
from contracts import temporal  # noqa: E402
from contracts.ids import review_id  # noqa: E402
from contracts.models import ReviewMRInput, ReviewMRResult  # noqa: E402
from core import markers  # noqa: E402
from devenv.stack import AGENT, WEBHOOK_SECRET, stack_settings  # noqa: E402
from devenv.temporal_server import TemporalDevServer  # noqa: E402
from devenv.uvicorn_thread import UvicornThread  # noqa: E402
from executors.base import make_executor  # noqa: E402
from standins.brains import DemoBrain  # noqa: E402
from standins.gitlab import GitLabStandIn  # noqa: E402
from standins.model_server import ModelServer  # noqa: E402
from worker import build_worker  # noqa: E402

PROJECT = "bench/app"


class TimedExecutor:
    """The real executor; notes each run's CLI duration (the CLI's own figure) and its wall time."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.runs: list[tuple[float, float, float]] = []  # (started, ended, cli seconds)

    async def run(self, task, *, run_id: str, traceparent: str | None = None):
        started = time.monotonic()
        result = await self.inner.run(task, run_id=run_id, traceparent=traceparent)
        self.runs.append((started, time.monotonic(), result.duration_s))
        return result


def module(n: int, with_print: bool) -> str:
    lines = [f'"""Module {n}."""', "", f"def value_{n}():"]
    lines.append(f"    print({n})" if with_print else f"    return {n}")
    return "\n".join(lines) + "\n"


def hook(pid: int, iid: int, sha: str) -> dict:
    return {
        "object_kind": "merge_request",
        "project": {"id": pid, "path_with_namespace": PROJECT},
        "object_attributes": {
            "iid": iid,
            "action": "open",
            "state": "opened",
            "draft": False,
            "last_commit": {"id": sha},
        },
    }


def summary_posted(gitlab: GitLabStandIn, iid: int) -> bool:
    return any(markers.parse(n["body"], markers.SUMMARY) for n in gitlab.notes(PROJECT, iid))


def p50(values: list[float]) -> float:
    return statistics.median(values)


async def overhead(gitlab, settings, pid: int, runs: int) -> None:
    executor = TimedExecutor(make_executor(settings))
    review = ReviewActivities(settings, executor)
    activities = [
        getattr(review, a.__name__) if isinstance(getattr(a, "__self__", None), ReviewActivities) else a
        for a in build_activities(settings)
    ]
    mrs = []
    for r in range(runs + 1):  # the first one warms the worker, the CLI cache and the slots workflow
        files = {f"src/pkg_{r}/mod_{n}.py": module(n, True) for n in range(20)}
        gitlab.commit(PROJECT, f"overhead-{r}", files, f"feat: 20 modules ({r})", author="dev")
        mrs.append(gitlab.create_mr(PROJECT, f"overhead-{r}", title=f"Twenty modules {r}", author="dev"))
    client = await temporal.connect(settings)
    totals, clis, before_agent, after_agent, ids = [], [], [], [], []
    with UvicornThread(create_app(settings, temporal_client=client)) as api:
        async with build_worker(client, settings, activities=activities), httpx.AsyncClient() as http:
            for r, mr in enumerate(mrs):
                sha = gitlab.mr_json(PROJECT, mr.iid)["sha"]
                started = time.monotonic()
                answer = await http.post(
                    f"{api.url}/webhook",
                    json=hook(pid, mr.iid, sha),
                    headers={"X-Gitlab-Token": WEBHOOK_SECRET, "X-Gitlab-Event": "Merge Request Hook"},
                )
                assert answer.status_code == 202, answer.text
                for _ in range(30_000):  # polled every 10 ms, for at most about 5 minutes
                    if summary_posted(gitlab, mr.iid):
                        break
                    await asyncio.sleep(0.01)
                ended = time.monotonic()
                result = await client.get_workflow_handle(
                    review_id(pid, mr.iid, sha), result_type=ReviewMRResult
                ).result()
                assert result.status == "posted" and result.posted and result.posted.inline == 20, result
                if r == 0:
                    continue
                agent_started, agent_ended, cli = executor.runs[-1]
                totals.append(ended - started)
                ids.append(review_id(pid, mr.iid, sha))
                clis.append(cli)
                before_agent.append(agent_started - started)
                after_agent.append(ended - agent_ended)
    beyond = [t - c for t, c in zip(totals, clis, strict=True)]
    print(f"1. webhook -> summary published, 20 files, 20 findings, instant model (p50 of {runs}):")
    print(f"   the CLI's own run (baseline, same runs):     {p50(clis):6.2f} s")
    print(f"   webhook -> summary published:                {p50(totals):6.2f} s")
    print(f"   beyond the CLI's run:                        {p50(beyond):6.2f} s   (target <= 1.00 s)")
    print(f"     of which webhook -> agent run starts:      {p50(before_agent):6.2f} s")
    print(f"     of which agent run ended -> summary:       {p50(after_agent):6.2f} s")
    print(
        f"     clone, sandbox, diff and prompt (rest):    {p50(beyond) - p50(before_agent) - p50(after_agent):6.2f} s"
    )
    typical = sorted(range(len(totals)), key=lambda i: totals[i])[len(totals) // 2]
    print(f"   the median run's steps ({ids[typical]}):")
    print("\n".join(await timeline(client, ids[typical])))


async def fanout(gitlab, make, pid: int, files: int, temporal_pid: int) -> None:
    content = {f"pkg{n % 10}/sub{n % 3}/mod_{n:03d}.py": module(n, n % 25 == 0) for n in range(files)}
    gitlab.commit(PROJECT, "wide", content, f"feat: {files} modules", author="dev")
    # The copy's one extra file is excluded (REVIEW_EXCLUDE *.lock), so both MRs get the same bundles.
    gitlab.commit(
        PROJECT, "wide-copy", {"COPY.lock": "same state\n"}, "copy", from_branch="wide", author="dev"
    )
    timings, cpu, ids, busy = {}, {}, {}, {}
    for slots, branch in ((1, "wide-copy"), (4, "wide")):
        settings = make(
            f"bench-fanout-{slots}", max_agent_runs_per_project=slots, max_concurrent_agent_runs=4
        )
        mr = gitlab.create_mr(PROJECT, branch, title=f"{files} modules, {slots} slot(s)", author="dev")
        sha = gitlab.mr_json(PROJECT, mr.iid)["sha"]
        client = await temporal.connect(settings)
        ids[slots] = review_id(pid, mr.iid, sha)
        async with build_worker(client, settings):
            before = cpu_now(temporal_pid)
            busy_before = machine_busy()
            started = time.monotonic()
            result = await client.execute_workflow(
                "ReviewMR",
                ReviewMRInput(project_id=pid, mr_iid=mr.iid, head_sha=sha),
                id=ids[slots],
                task_queue=settings.temporal_task_queue,
                result_type=ReviewMRResult,
            )
            timings[slots] = time.monotonic() - started
            cpu[slots] = [after - first for after, first in zip(cpu_now(temporal_pid), before, strict=True)]
            busy[slots] = machine_busy() - busy_before
        assert result.status == "posted", result
        body = next(
            n["body"] for n in gitlab.notes(PROJECT, mr.iid) if markers.parse(n["body"], markers.SUMMARY)
        )
        bundles = body.split("Coverage in ", 1)[1].split(" bundles", 1)[0]
        total = files + (1 if branch == "wide-copy" else 0)
        assert f"{files} of {total} changed files reviewed, 0 partly reviewed" in body, body[:2000]
    cores = len(os.sched_getaffinity(0))
    # The machine's busy CPU over the run (/proc/stat), not the processes' rusage: the CLI runs in
    # bubblewrap's PID namespace and its processes are not all reaped by us, so rusage undercounts
    # them several times over. On a quiet machine this is the run's own CPU.
    serial_cpu = busy[1]
    floor = max(timings[1] / 4, serial_cpu / cores)
    print(f"2. a {files}-file MR reviewed in {bundles} bundles:")
    print(f"   1 agent slot, one bundle after the other (baseline): {timings[1]:6.2f} s")
    print(f"   4 agent slots:                                       {timings[4]:6.2f} s")
    print(f"   parallel / serial: {timings[4] / timings[1]:.2f}   (target <= 0.33)")
    for slots in (1, 4):
        own, agents, server = cpu[slots]
        print(
            f"   CPU of the {slots}-slot run: machine busy {busy[slots]:5.1f} s; by rusage worker and "
            f"stand-ins {own:.1f}, reaped agent and git processes {agents:.1f}, Temporal {server:.1f}"
        )
    print(
        f"   this machine: {cores} CPUs; CPU-bound floor with 4 slots: max(serial / 4, serial busy CPU / "
        f"{cores}) = {floor:.2f} s -> best possible ratio here {floor / timings[1]:.2f}"
    )
    for slots in (1, 4):
        print(
            f"   bundles of the {slots}-slot run (s from the review's start: child started, agent run started, ended):"
        )
        print("\n".join(await bundle_times(client, ids[slots])))


def machine_busy() -> float:
    """CPU seconds all CPUs spent not idle so far (/proc/stat: user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_now(temporal_pid: int) -> tuple[float, float, float]:
    """CPU seconds so far of this process (worker, stand-ins, model server), of its finished child
    processes (the CLI runs, their sandboxes, git) and of the Temporal dev server."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    fields = Path(f"/proc/{temporal_pid}/stat").read_text().rsplit(")", 1)[1].split()
    server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime, server


async def bundle_times(client, parent_id: str) -> list[str]:
    """Per bundle: when its child workflow started and when its agent run started and ended, in
    seconds from the parent's start (from the histories)."""
    parent = [e async for e in client.get_workflow_handle(parent_id).fetch_history_events()]
    zero = parent[0].event_time.ToDatetime()
    lines = []
    for event in parent:
        if not event.HasField("child_workflow_execution_started_event_attributes"):
            continue
        child_id = event.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
        started = (event.event_time.ToDatetime() - zero).total_seconds()
        run_start = run_end = None
        async for e in client.get_workflow_handle(child_id).fetch_history_events():
            if e.HasField("activity_task_started_event_attributes"):
                run_start = (e.event_time.ToDatetime() - zero).total_seconds()  # the last: run_review
            if e.HasField("activity_task_completed_event_attributes"):
                run_end = (e.event_time.ToDatetime() - zero).total_seconds()
        lines.append(
            f"     {child_id.rsplit(':', 1)[-1]:>16}: {started:6.2f} {run_start or 0:6.2f} {run_end or 0:6.2f}"
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--skip-fanout", action="store_true")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        TemporalDevServer() as temporal_server,
        GitLabStandIn(Path(tmp) / "gitlab") as gitlab,
        ModelServer(brain=DemoBrain()) as model,
    ):
        agent = gitlab.add_user(AGENT)
        gitlab.add_user("dev")
        gitlab.create_project(PROJECT, {"README.md": "bench\n"}, members={AGENT: 30, "dev": 30})
        pid = gitlab.store.project(PROJECT).id

        def make(queue: str, **overrides):
            return stack_settings(
                temporal_address=temporal_server.address,
                task_queue=queue,
                gitlab=gitlab,
                agent_token=agent.token,
                model=model,
                work=Path(tmp) / "work",
                **overrides,
            )

        await overhead(gitlab, make("bench-overhead"), pid, args.runs)
        if not args.skip_fanout:
            # 300 four-line files (1,200 diff lines) in 30 directories of 40 lines: 8 bundles of <= 160.
            await fanout(
                gitlab,
                lambda q, **o: make(q, review_max_diff_lines=160, **o),
                pid,
                args.files,
                temporal_server.process.pid,
            )


if __name__ == "__main__":
    asyncio.run(main())
