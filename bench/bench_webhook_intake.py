"""Webhook intake against a real Temporal dev server, with the raw start rate as the ceiling.

Prints, measured in one run on this machine:
  baseline  raw `client.start_workflow` rate (50 concurrent callers) on the same server
  (a)       latency of POST /webhook at a steady, open-loop offered load of 20 deliveries/s
            (target p99 < 25 ms)
  (b)       saturation throughput with 50 concurrent senders (target >= 70 % of the baseline)
  (c)       burst dedup: 1,000 deliveries for 100 distinct SHAs sent concurrently → exactly 100 workflows

The API runs as its own uvicorn process (as in production), so the load generator does not share
its interpreter. No worker polls the task queue: this measures intake, not reviews.

    .venv/bin/python bench/bench_webhook_intake.py [--rate 20] [--seconds 15] [--saturation 2000]
"""

from __future__ import annotations

import argparse
import asyncio
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


async def raw_open_loop(settings: Settings, rate: float, seconds: float) -> list[float]:
    """The same open-loop schedule straight to `client.start_workflow`: the latency floor (a) sits on."""
    client = await temporal.connect(settings)
    latencies: list[float] = []

    async def one(n: int) -> None:
        begin = time.perf_counter()
        await client.start_workflow(
            "ReviewMR",
            {"project_id": 5, "mr_iid": n + 1},
            id=f"raw-loop-{uuid.uuid4()}",
            task_queue=settings.temporal_task_queue,
        )
        latencies.append((time.perf_counter() - begin) * 1000)

    tasks = []
    begin = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    return latencies


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
    assert set(statuses) == {202}, f"unexpected statuses {set(statuses)}"
    return latencies


async def saturation(url: str, count: int, concurrency: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    async with session(concurrency) as http:

        async def sender() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                status = await post(http, url, hook(3, n + 1, sha()))
                assert status == 202, status

        started = time.perf_counter()
        await asyncio.gather(*[sender() for _ in range(concurrency)])
        return count / (time.perf_counter() - started)


async def burst_dedup(
    url: str, settings: Settings, deliveries: int, distinct: int
) -> tuple[int, dict[int, int]]:
    shas = [sha() for _ in range(distinct)]
    payloads = [hook(4, 1, shas[n % distinct]) for n in range(deliveries)]
    async with session(200) as http:
        statuses = await asyncio.gather(*[post(http, url, p) for p in payloads])
    codes: dict[int, int] = {}
    for status in statuses:
        codes[status] = codes.get(status, 0) + 1
    client = await temporal.connect(settings)
    await asyncio.sleep(2)  # visibility is eventually consistent
    count = await client.count_workflows("GitLabProject = '4'")
    return count.count, codes


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--saturation", type=int, default=2000)
    parser.add_argument("--raw", type=int, default=2000)
    args = parser.parse_args()

    with TemporalDevServer() as server:
        settings = Settings(
            _env_file=None,
            temporal_address=server.address,
            temporal_task_queue="bench-intake",
            gitlab_webhook_secret=SECRET,
            gitlab_agent_username="copilot-agent",
        )
        port = free_port()
        api = start_api_process(settings, port, quiet=True)
        url = f"http://127.0.0.1:{port}"
        try:
            # The latency run goes first, on a quiet server; the raw baseline is measured right before
            # the saturation run it is compared with.
            latencies = await open_loop(url, args.rate, args.seconds)
            floor = await raw_open_loop(settings, args.rate, args.seconds)
            print(
                f"(a) open loop {args.rate:.0f}/s for {args.seconds:.0f}s, POST /webhook: {describe(latencies)}"
                "  (target p99 < 25 ms)"
            )
            print(f"    baseline, same schedule straight to client.start_workflow: {describe(floor)}")
            raw = await raw_start_rate(settings, args.raw, 50)
            print(
                f"baseline  raw client.start_workflow: {raw:7.1f} starts/s (50 concurrent callers, {args.raw} starts)"
            )
            rate = await saturation(url, args.saturation, 50)
            print(
                f"(b) saturation, 50 concurrent senders: {rate:7.1f} deliveries/s = {100 * rate / raw:.0f} % of "
                "the raw start rate (target >= 70 %)"
            )
            workflows, codes = await burst_dedup(url, settings, 1000, 100)
            print(
                f"(c) burst: 1000 deliveries for 100 SHAs → {workflows} workflows; answers {codes} "
                f"({'OK' if workflows == 100 else 'MISMATCH'})"
            )
        finally:
            api.terminate()
            api.wait()


if __name__ == "__main__":
    asyncio.run(main())
