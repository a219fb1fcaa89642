"""Webhook intake against a real Temporal dev server, compared with a minimal handler in the same run.

The reference is bench/baseline_intake.py: a FastAPI handler that only checks the token and calls
`start_workflow` with REJECT_DUPLICATE. Both run as their own uvicorn process (as in production) on
the same dev server; rounds alternate between them so a noisy neighbour hurts both alike. Prints:
  (a)  latency of POST /webhook at an open-loop offered load (default 20/s for 20 s = 400 deliveries),
       API and baseline, and the API's p99 ratio (target <= 1.2x)
  (b)  throughput with 50 concurrent senders, API and baseline, and the ratio (target >= 90 %)
  (c)  burst dedup: 1,000 deliveries for 100 distinct SHAs sent concurrently → exactly 100 workflows,
       API and baseline, with their answers by HTTP status
plus the raw `client.start_workflow` rate as the ceiling. No worker polls the task queue: this
measures intake, not reviews.

    .venv/bin/python bench/bench_webhook_intake.py [--rate 20] [--seconds 20] [--saturation 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts import temporal  # noqa: E402
from contracts.settings import Settings  # noqa: E402
from devenv.temporal_server import TemporalDevServer, free_port  # noqa: E402
from devenv.worker_process import start_api_process  # noqa: E402

SECRET = "bench-secret"


def hook(project: int, iid: int, sha: str) -> dict:
    return {
        "object_kind": "merge_request",
        "project": {"id": project, "path_with_namespace": "bench/app"},
        "object_attributes": {
            "iid": iid,
            "action": "open",
            "state": "opened",
            "draft": False,
            "author_id": 5,
            "last_commit": {"id": sha},
        },
    }


def sha() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def raw_start_rate(settings: Settings, count: int, concurrency: int) -> float:
    client = await temporal.connect(settings)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def caller() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            await client.start_workflow(
                "ReviewMR",
                {"project_id": 1, "mr_iid": n + 1},
                id=f"raw-{uuid.uuid4()}",
                task_queue=settings.temporal_task_queue,
            )

    started = time.perf_counter()
    await asyncio.gather(*[caller() for _ in range(concurrency)])
    return count / (time.perf_counter() - started)


def session(connections: int) -> aiohttp.ClientSession:
    # aiohttp, not httpx, as the load generator: it costs far less CPU per request, and on 2 cores
    # every cycle the generator burns is one the API and Temporal do not get.
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections), timeout=aiohttp.ClientTimeout(total=60)
    )


async def post(http: aiohttp.ClientSession, url: str, payload: dict) -> int:
    async with http.post(f"{url}/webhook", json=payload, headers={"X-Gitlab-Token": SECRET}) as response:
        await response.read()
        return response.status


def describe(latencies: list[float]) -> str:
    return (
        f"p50 {statistics.median(latencies):.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
    )


async def open_loop(url: str, rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    statuses: list[int] = []
    async with session(100) as http:

        async def one(n: int) -> None:
            begin = time.perf_counter()
            statuses.append(await post(http, url, hook(2, n + 1, sha())))
            latencies.append((time.perf_counter() - begin) * 1000)

        tasks = []
        begin = time.perf_counter()
        total = int(rate * seconds)
        for n in range(total):
            # Open loop: send on schedule whether or not earlier requests have answered.
            delay = begin + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    if set(statuses) != {202}:
        # A loaded machine may time starts out (503): shown, and counted in the latencies, rather
        # than stopping the bench; on a quiet machine every answer is 202.
        counts = {code: statuses.count(code) for code in sorted(set(statuses))}
        print(f"    note: {url} open loop answers {counts}")
    return latencies


async def saturation(url: str, count: int, concurrency: int) -> tuple[float, dict[int, int]]:
    """Deliveries/s with `concurrency` senders, and the answers by HTTP status (all 202 when healthy;
    a loaded machine may time out starts, which shows here instead of stopping the bench)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    codes: dict[int, int] = {}
    async with session(concurrency) as http:

        async def sender() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                try:
                    status = await post(http, url, hook(3, n + 1, sha()))
                except aiohttp.ClientError:
                    status = 0
                codes[status] = codes.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*[sender() for _ in range(concurrency)])
        return count / (time.perf_counter() - started), codes


async def burst_dedup(
    url: str, settings: Settings, deliveries: int, distinct: int, project: int
) -> tuple[int, dict[int, int]]:
    shas = [sha() for _ in range(distinct)]
    payloads = [hook(project, 1, shas[n % distinct]) for n in range(deliveries)]
    async with session(200) as http:

        async def deliver(payload: dict) -> int:
            try:
                return await post(http, url, payload)
            except aiohttp.ClientError:
                return 0  # connection reset: the machine is overloaded

        statuses = await asyncio.gather(*[deliver(p) for p in payloads])
    codes: dict[int, int] = {}
    for status in statuses:
        codes[status] = codes.get(status, 0) + 1
    client = await temporal.connect(settings)
    await asyncio.sleep(2)  # visibility is eventually consistent
    # The baseline sets no search attributes: its runs are counted by their IDs.
    count = await client.count_workflows(f"WorkflowId STARTS_WITH 'review:{project}:'")
    return count.count, codes


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), to compare the cost per delivery of the
    two servers independently of what else the machine is running."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ratio_line(name: str, api: float, baseline: float, target: str) -> str:
    return f"{name}: API {api:.1f} vs baseline {baseline:.1f} -> {api / baseline:.2f}x ({target})"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--saturation", type=int, default=1000)
    parser.add_argument("--raw", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with TemporalDevServer() as server:
        settings = Settings(
            _env_file=None,
            temporal_address=server.address,
            temporal_task_queue="bench-intake",
            gitlab_webhook_secret=SECRET,
            gitlab_agent_username="copilot-agent",
        )
        ports = {"api": free_port(), "baseline": free_port()}
        processes = {
            "api": start_api_process(settings, ports["api"], quiet=True),
            "baseline": start_api_process(
                settings, ports["baseline"], quiet=True, app="bench.baseline_intake:create_app"
            ),
        }
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        latencies: dict[str, list[float]] = {"api": [], "baseline": []}
        rates: dict[str, list[float]] = {"api": [], "baseline": []}
        cpu: dict[str, float] = {"api": 0.0, "baseline": 0.0}
        delivered: dict[str, int] = {"api": 0, "baseline": 0}
        try:
            for name in urls:  # warm both (imports, first connections) outside the measurement
                await open_loop(urls[name], 20, 1)
            for round_no in range(args.rounds):
                order = ["baseline", "api"] if round_no % 2 == 0 else ["api", "baseline"]
                for name in order:
                    latencies[name] += await open_loop(urls[name], args.rate, args.seconds)
                for name in order:
                    before = cpu_seconds(processes[name].pid)
                    rate, codes = await saturation(urls[name], args.saturation, 50)
                    cpu[name] += cpu_seconds(processes[name].pid) - before
                    delivered[name] += codes.get(202, 0)
                    rates[name].append(rate)
                    if set(codes) != {202}:
                        print(f"    note: {name} saturation round {round_no + 1} answers {codes}")
            for name in ("api", "baseline"):
                print(
                    f"(a) {name:8} open loop {args.rate:.0f}/s, {args.rounds} x {args.seconds:.0f} s: "
                    f"{describe(latencies[name])}"
                )
            p99 = {name: percentile(values, 0.99) for name, values in latencies.items()}
            p50 = {name: statistics.median(values) for name, values in latencies.items()}
            print("    " + ratio_line("p50 ms", p50["api"], p50["baseline"], "for information"))
            print("    " + ratio_line("p99 ms", p99["api"], p99["baseline"], "target <= 1.20x"))
            rate = {name: statistics.median(values) for name, values in rates.items()}
            for name in ("api", "baseline"):
                print(
                    f"(b) {name:8} 50 concurrent senders, {args.saturation} deliveries: "
                    f"{rate[name]:6.1f}/s (rounds: {', '.join(f'{r:.1f}' for r in rates[name])})"
                )
            print(
                f"    throughput: API {rate['api']:.1f}/s vs baseline {rate['baseline']:.1f}/s -> "
                f"{100 * rate['api'] / rate['baseline']:.0f} % (target >= 90 %)"
            )
            per = {name: 1000 * cpu[name] / max(1, delivered[name]) for name in cpu}
            print(
                f"    server CPU per delivery: API {per['api']:.2f} ms vs baseline {per['baseline']:.2f} ms "
                f"-> baseline/API {100 * per['baseline'] / per['api']:.0f} % (CPU cost ratio, less sensitive to a busy machine)"
            )
            raw = await raw_start_rate(settings, args.raw, 50)
            print(f"    ceiling, raw client.start_workflow: {raw:6.1f} starts/s (50 concurrent callers)")
            for name, project in (("baseline", 6), ("api", 4)):
                workflows, codes = await burst_dedup(urls[name], settings, 1000, 100, project)
                print(
                    f"(c) {name:8} burst: 1000 deliveries for 100 SHAs → {workflows} workflows; answers "
                    f"{dict(sorted(codes.items()))} ({'OK' if workflows == 100 else 'MISMATCH'})"
                )
        finally:
            for process in processes.values():
                process.terminate()
                process.wait()


if __name__ == "__main__":
    asyncio.run(main())
