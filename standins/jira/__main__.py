"""Run the Jira stand-in until interrupted: `python -m standins.jira --port 8089 --seed demo`."""

from __future__ import annotations

import argparse
import signal
import threading

from standins.jira.demo import DEMO_EMAIL, DEMO_TOKEN, seed_demo
from standins.jira.server import JiraStandIn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.jira", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", choices=["none", "demo"], default="none")
    parser.add_argument("--deployment-type", choices=["Cloud", "Server"], default="Cloud")
    parser.add_argument("--email", default=DEMO_EMAIL, help="account created by --seed demo")
    parser.add_argument("--token", default=DEMO_TOKEN, help="API token of that account")
    args = parser.parse_args(argv)

    standin = JiraStandIn(args.host, args.port, deployment_type=args.deployment_type)
    if args.seed == "demo":
        seed_demo(standin, args.email, args.token)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with standin:
        print(f"Jira stand-in listening on {standin.url}", flush=True)
        if args.seed == "demo":
            print(f"JIRA_URL={standin.url} JIRA_EMAIL={args.email} JIRA_API_TOKEN={args.token}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
