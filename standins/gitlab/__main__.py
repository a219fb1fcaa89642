"""Run the stand-in in the foreground: `python -m standins.gitlab --port P --root DIR [--seed demo]`."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path

from standins.gitlab.server import GitLabStandIn

DEMO_FILES = {
    "README.md": "# calculator\n\nA tiny demo project for the Copilot agent.\n",
    "calc.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
    "test_calc.py": "from calc import add, sub\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
}


def seed_demo(gl: GitLabStandIn) -> dict[str, str]:
    """A developer, the agent's bot user and one project with an open MR to review."""
    dev = gl.add_user("alice", name="Alice Developer")
    bot = gl.add_user("copilot-agent", name="Copilot Agent")
    gl.create_project("demo/calculator", DEMO_FILES, members={"alice": 40, "copilot-agent": 30})
    gl.commit(
        "demo/calculator",
        "feature/multiply",
        {"calc.py": DEMO_FILES["calc.py"] + "\n\ndef mul(a, b):\n    return a * b\n"},
        "Add multiplication",
    )
    gl.create_mr("demo/calculator", "feature/multiply", title="Add multiplication", author="alice")
    return {"alice": dev.token, "copilot-agent": bot.token}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.gitlab", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--root", type=Path, required=True, help="directory for the bare repositories")
    parser.add_argument("--seed", choices=["demo"], help="populate users, a project and an MR")
    parser.add_argument("--webhook-url", help="deliver Merge Request / Note hooks here")
    parser.add_argument("--webhook-secret", help="sent as X-Gitlab-Token")
    args = parser.parse_args(argv)
    gl = GitLabStandIn(args.root, host=args.host, port=args.port)
    tokens = seed_demo(gl) if args.seed == "demo" else {}
    if args.webhook_url:
        gl.set_webhook(args.webhook_url, args.webhook_secret)
    gl.start()
    # One JSON line so scripts (make demo) can parse the URL and tokens.
    print(json.dumps({"url": gl.url, "tokens": tokens}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    gl.stop()


if __name__ == "__main__":
    main()
