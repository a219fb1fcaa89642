"""How fast the webhook says 503 when Temporal is unreachable (GitLab waits 10 s, then records a
timeout and eventually disables the hook).

Three ways Temporal is unreachable: nothing listens on its port ("refused"), something accepts
connections and never answers ("silent", a hung server or proxy), and the server stops after the
API had connected ("went away"). For each, `--deliveries` webhook deliveries through the real API
(uvicorn, the API's fail-fast client and its start deadline) are timed; the baseline, measured in
the same run, is a `start_workflow` on a client with the SDK's default connection and retry
settings and the 5 s RPC timeout the API used before (`--baseline-deliveries` each, since a
silent server costs 30 s per try there).

    .venv/bin/python bench/bench_webhook_unavailable.py [--deliveries 10] [--baseline-deliveries 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app  # noqa: E402
from contracts import temporal  # noqa: E402
from contracts.settings import Settings  # noqa: E402
from devenv.temporal_server import TemporalDevServer, free_port  # noqa: E402
from devenv.uvicorn_thread import UvicornThread  # noqa: E402

SECRET = "bench-webhook-secret"
CASES = ("refused", "silent", "went away")


def hook() -> bytes:
    sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    return json.dumps(
        {
            "object_kind": "merge_request",
            "event_type": "merge_request",
            "user": {"id": 11, "username": "dev"},
            "project": {"id": 7, "path_with_namespace": "group/app"},
            "object_attributes": {
                "iid": 3, "action": "open", "state": "opened", "draft": False, "title": "x",
                "author_id": 11, "last_commit": {"id": sha},
            },
        }
    ).encode()  # fmt: skip


@contextlib.contextmanager
def unreachable(case: str) -> Iterator[tuple[str, Callable[[], None]]]:
    """An address where Temporal is unreachable in the given way, and what makes it so."""
    if case == "refused":
        yield f"127.0.0.1:{free_port()}", lambda: None
    elif case == "silent":
        with socket.create_server(("127.0.0.1", 0), backlog=128) as listener:
            yield f"127.0.0.1:{listener.getsockname()[1]}", lambda: None
    else:
        with TemporalDevServer() as server:
            yield server.address, server.stop


async def timed(n: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    took = []
    for _ in range(n):
        began = time.monotonic()
        await call()
        took.append(time.monotonic() - began)
    return took


async def api_case(case: str, n: int) -> list[float]:
    with unreachable(case) as (address, go_away):
        settings = Settings(_env_file=None, temporal_address=address, gitlab_webhook_secret=SECRET)
        app = create_app(settings)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per delivery otherwise
        with UvicornThread(app) as server:
            headers = {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Merge Request Hook"}
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:

                async def deliver(expect: int = 503) -> None:
                    response = await http.post("/webhook", content=hook(), headers=headers)
                    assert response.status_code == expect, response.text

                if case == "went away":
                    await deliver(202)  # connected and warm
                go_away()
                return await timed(n, deliver)


async def baseline_case(case: str, n: int) -> list[float]:
    with unreachable(case) as (address, go_away):
        client = await temporal.connect(Settings(_env_file=None, temporal_address=address), lazy=True)

        async def start() -> None:
            with contextlib.suppress(Exception):
                await client.start_workflow(
                    "ReviewMR", {"project_id": 7, "mr_iid": 3}, id=f"bench-{uuid.uuid4().hex}",
                    task_queue="bench", rpc_timeout=timedelta(seconds=5),
                )  # fmt: skip

        if case == "went away":
            await client.service_client.check_health()
        go_away()
        return await timed(n, start)


def row(name: str, took: list[float]) -> str:
    return f"  {name:<28} p50 {statistics.median(took):6.2f} s   max {max(took):6.2f} s   (n={len(took)})"


async def main(args: argparse.Namespace) -> int:
    lines = ["== webhook answer while Temporal is unreachable (GitLab's webhook timeout: 10 s)"]
    worst = 0.0
    for case in CASES:
        api = await api_case(case, args.deliveries)
        base = await baseline_case(case, args.baseline_deliveries)
        worst = max(worst, max(api))
        lines += [f" {case}:", row("API 503", api), row("baseline (SDK defaults)", base)]
    print("\n".join(lines), flush=True)
    return 0 if worst < 2.0 else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=10)
    parser.add_argument("--baseline-deliveries", type=int, default=2)
    args = parser.parse_args(argv)
    if args.deliveries < 1 or args.baseline_deliveries < 1:
        parser.error("need at least one delivery")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
