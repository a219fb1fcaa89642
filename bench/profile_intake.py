"""Where the API's CPU per webhook delivery goes: the API (or the baseline) under cProfile.

Starts a Temporal dev server and the app as its own uvicorn process under cProfile, sends
`--count` merge request deliveries from `--senders` concurrent senders, stops the app (SIGINT, so
the profile is written) and prints the functions with the most own and cumulative time. The
profiler slows everything down several times; read the shares, not the milliseconds.

    .venv/bin/python -m bench.profile_intake [--count 2000] [--senders 10] [--app bench.baseline_intake:create_app]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

from bench.bench_webhook_intake import SECRET, hook, sha
from contracts.settings import Settings
from devenv.temporal_server import TemporalDevServer, free_port
from devenv.worker_process import REPO_ROOT, settings_env


async def deliver(url: str, count: int, senders: int) -> dict[int, int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    codes: dict[int, int] = {}
    async with aiohttp.ClientSession() as http:

        async def sender() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                async with http.post(
                    f"{url}/webhook", json=hook(5, n + 1, sha()), headers={"X-Gitlab-Token": SECRET}
                ) as response:
                    await response.read()
                    codes[response.status] = codes.get(response.status, 0) + 1

        await asyncio.gather(*[sender() for _ in range(senders)])
    return codes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--app", default="api.app:create_app")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", help="keep the profile here (for pstats' callers and callees)")
    args = parser.parse_args()
    with TemporalDevServer() as server, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            temporal_address=server.address,
            temporal_task_queue="bench-profile",
            gitlab_webhook_secret=SECRET,
            gitlab_agent_username="copilot-agent",
        )
        port = free_port()
        out = Path(args.out) if args.out else Path(tmp) / "api.prof"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
        env.update(settings_env(settings))
        cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "uvicorn", args.app, "--factory"]
        cmd += ["--port", str(port), "--no-proxy-headers", "--log-level", "warning", "--no-access-log"]
        process = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            url = f"http://127.0.0.1:{port}"
            asyncio.run(deliver(url, 100, args.senders))  # warm-up, in the profile too (small)
            began = time.perf_counter()
            codes = asyncio.run(deliver(url, args.count, args.senders))
            print(f"{args.count} deliveries in {time.perf_counter() - began:.1f} s: {codes}")
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(60)
        stats = pstats.Stats(str(out))
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
