"""`make demo`: the whole service on one machine, with no credentials and no network.

Starts the real Temporal dev server (Web UI on 8233), the GitLab stand-in with a sample project, the
deterministic demo model behind the real Copilot CLI, the worker and the API; opens a merge request
whose webhook reaches the API; waits for the ReviewMR workflow; prints what was posted and where to
look in the Web UI. Then it keeps running until Ctrl-C (`--once` exits after the review).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from contracts.ids import review_id
from contracts.models import ReviewMRResult
from contracts.settings import REPO_ROOT
from devenv.stack import AGENT, running_service, stack_settings
from devenv.temporal_server import TemporalDevServer, free_port
from standins.brains import DemoBrain
from standins.gitlab import GitLabStandIn
from standins.model_server import ModelServer

PROJECT = "demo/calculator"
DEVELOPER = "alice"
FILES = {
    "README.md": "# calculator\n\nA tiny project the demo reviews.\n",
    "calc.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
    "test_calc.py": "from calc import add, sub\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
}
FEATURE = {
    "calc.py": FILES["calc.py"]
    + textwrap.dedent(
        """

        def evaluate(expression):
            # TODO: support variables
            try:
                return eval(expression)
            except:
                print("could not evaluate", expression)
                return None
        """
    ),
    "settings.py": 'API_URL = "https://calc.example.com"\npassword = "hunter2"\n',
}


def _port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


async def demo(once: bool) -> int:
    work = Path(tempfile.mkdtemp(prefix="copilot-agent-demo-"))
    ui_port = _port(8233)
    temporal = TemporalDevServer(_port(7233), ui_port=ui_port, log_file=work / "temporal.log").start()
    print(f"Temporal dev server on {temporal.address}; Web UI http://127.0.0.1:{ui_port}")
    with GitLabStandIn(work / "gitlab") as gitlab, ModelServer(brain=DemoBrain()) as model:
        agent = gitlab.add_user(AGENT, name="Copilot Agent")
        gitlab.add_user(DEVELOPER, name="Alice")
        gitlab.create_project(PROJECT, FILES, members={DEVELOPER: 40, AGENT: 30})
        print(f"GitLab stand-in on {gitlab.url} with project {PROJECT}; demo model on {model.base_url}")
        settings = stack_settings(
            temporal_address=temporal.address,
            task_queue="gitlab-copilot-agent",
            gitlab=gitlab,
            agent_token=agent.token,
            model=model,
            work=work / "runs",
        )
        try:
            async with running_service(settings) as (client, api_url):
                print(f"API on {api_url}; worker polling task queue {settings.temporal_task_queue}")
                gitlab.set_webhook(f"{api_url}/webhook", settings.gitlab_webhook_secret.get_secret_value())
                gitlab.commit(
                    PROJECT, "feature/evaluate", FEATURE, "feat: evaluate expressions", author=DEVELOPER
                )
                mr = gitlab.create_mr(
                    PROJECT, "feature/evaluate", title="Evaluate expressions", author=DEVELOPER
                )
                head = gitlab.mr_json(PROJECT, mr.iid)["sha"]
                workflow_id = review_id(gitlab.store.project(PROJECT).id, mr.iid, head)
                print(
                    f"\nOpened MR !{mr.iid}; GitLab sent the webhook; waiting for workflow {workflow_id} ..."
                )
                started = time.monotonic()
                result = await _wait_result(client, workflow_id)
                print(f"Review {result.status} in {time.monotonic() - started:.1f}s.\n")
                _print_review(gitlab, mr.iid)
                print(
                    f"\nSee it in the Web UI: http://127.0.0.1:{ui_port}/namespaces/default/workflows/{workflow_id}"
                )
                print(
                    "Try: temporal workflow list --address "
                    f"{temporal.address} --query \"WorkflowType='ReviewMR'\""
                )
                if not once:
                    print("\nThe service keeps running; press Ctrl-C to stop.")
                    await _until_interrupted()
                return 0 if result.status == "posted" else 1
        finally:
            temporal.stop()


async def _wait_result(client, workflow_id: str, timeout: float = 180.0) -> ReviewMRResult:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client.get_workflow_handle(workflow_id, result_type=ReviewMRResult).result()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def _print_review(gitlab: GitLabStandIn, iid: int) -> None:
    for discussion in gitlab.discussions(PROJECT, iid):
        note = discussion["notes"][0]
        if note["author"]["username"] != AGENT:
            continue
        position = note.get("position") or {}
        where = f"{position.get('new_path')}:{position.get('new_line')}" if position else "general comment"
        body = "\n".join(line for line in note["body"].splitlines() if not line.startswith("<!--")).strip()
        print(f"--- {where} ---")
        print(textwrap.indent(body, "  "))


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="exit after the review instead of running on")
    args = parser.parse_args(argv)
    if not (REPO_ROOT / "node_modules").exists():
        print("the Copilot CLI is missing: run `make setup` first", file=sys.stderr)
        return 1
    return asyncio.run(demo(args.once))


if __name__ == "__main__":
    sys.exit(main())
