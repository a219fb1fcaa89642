"""Many reviews, discussions and implementations under random faults: the long variant of
tests/reliability/test_fault_injection.py, on the same rig (tests/reliability/faults_support.py).

While N ReviewMR, D MRDiscussion and M ImplementIssue runs (Jira stand-in) work through one worker
process:
  * the worker is SIGKILLed at random moments and started again (`--kills`),
  * the Temporal dev server is stopped and started again from its SQLite file (`--restarts`),
  * GitLab answers `--gitlab-rate` of REST requests with 500/502/429 (Retry-After: 1) and stalls
    some, Jira answers `--jira-rate` of requests with 500/503; `--lost-share` of those faults come
    after the request took effect (the reply is lost: the status, or a dropped connection),
  * the model server fails (500) and stalls now and then.
Prints the figures: runs, how each ended, faults served per kind (lost replies apart), duplicates of
any kind (findings by their hidden `fp=` markers, summaries, failure notes, replies, any two
identical agent notes, awards, branches, MRs, Jira comments) and findings lost. Exits 1 when any
run is duplicated, lost a finding, or ended without exactly one failure message.

At the issue's 30 % the retry budgets are the limit, not idempotency: the agent activities read
GitLab before they run the agent and have 3 attempts (5 reads at 30 % fail an attempt ~83 % of the
time), and the GitLab/Jira activities' 8 attempts are spent in ~8 s when Retry-After is 1 s, so some
runs fail — and a failure note may itself run out of attempts. `--gitlab-rate 0.1` shows the rest.

    .venv/bin/python bench/bench_fault_injection.py [--reviews 20] [--implementations 5] [--kills 3]
        [--restarts 2] [--gitlab-rate 0.3] [--jira-rate 0.3] [--lost-share 0.3] [--discussions 3]
        [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability.faults_support import FaultRig, audit_all, figures_block  # noqa: E402


async def chaos(rig: FaultRig, args: argparse.Namespace, rng: random.Random) -> None:
    """Kills and restarts at random moments while the runs work (one every few to 25 seconds)."""
    events = ["kill"] * args.kills + ["restart"] * args.restarts
    rng.shuffle(events)
    for event in events:
        await asyncio.sleep(rng.uniform(3, 25))
        if rng.random() < 0.5:
            rig.model_fail(rng.randint(1, 2))
        else:
            rig.model_stall(1, rng.uniform(1, 5))
        rig.gitlab.stall_next(rng.randint(1, 3), rng.uniform(1, 8))
        if event == "kill":
            rig.kill_worker(f"t+{time.monotonic() - args.began:.0f}s")
            await asyncio.sleep(rng.uniform(0, 2))
            rig.start_worker()
        else:
            await asyncio.to_thread(rig.restart_temporal, rng.uniform(0.5, 3))


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        rig = FaultRig(Path(tmp), agent_slots=args.agent_slots)
        try:
            await rig.start()
            for _ in range(args.reviews):
                rig.add_review()
            for _ in range(args.implementations):
                rig.add_implementation()
            for index in range(args.discussions):
                rig.add_discussion(rig.reviews[index % len(rig.reviews)])
            rig.gitlab.inject_faults(
                args.gitlab_rate, (500, 502, 429), retry_after=1, seed=args.seed, lost_share=args.lost_share
            )
            rig.jira.inject_faults(args.jira_rate, (500, 503), seed=args.seed, lost_share=args.lost_share)
            args.began = time.monotonic()
            for case in rig.reviews:
                await rig.start_review(case)
            for case in rig.implementations:
                await rig.start_implementation(case)
            for case in rig.discussions:
                await rig.start_discussion(case)
            await chaos(rig, args, rng)
            statuses = await rig.wait_all(timeout=args.timeout)
            audit = audit_all(rig, statuses)
            title = (
                f"fault injection bench (GitLab {args.gitlab_rate:.0%}, Jira {args.jira_rate:.0%}, "
                f"{args.lost_share:.0%} of faults after the effect, seed {args.seed})"
            )
            print(figures_block(rig, audit, time.monotonic() - args.began, title), flush=True)
        finally:
            rig.stop()
    return 1 if audit.problems or audit.duplicates else 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=20)
    parser.add_argument("--implementations", type=int, default=5)
    parser.add_argument(
        "--discussions", type=int, default=3, help="MR notes asking the agent (on review MRs)"
    )
    parser.add_argument("--lost-share", type=float, default=0.3, help="share of faults after the effect")
    parser.add_argument("--kills", type=int, default=3, help="worker SIGKILLs at random moments")
    parser.add_argument("--restarts", type=int, default=2, help="Temporal server restarts")
    parser.add_argument("--gitlab-rate", type=float, default=0.3)
    parser.add_argument("--jira-rate", type=float, default=0.3)
    parser.add_argument("--agent-slots", type=int, default=4, help="agent runs at once (CPU bound)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait for every run")
    args = parser.parse_args(argv)
    if args.reviews < 0 or args.implementations < 0 or args.reviews + args.implementations == 0:
        parser.error("need at least one run")
    if not (0 <= args.gitlab_rate <= 1 and 0 <= args.jira_rate <= 1 and 0 <= args.lost_share <= 1):
        parser.error("fault rates are shares within [0, 1]")
    if args.discussions and not args.reviews:
        parser.error("discussions are asked on the reviews' MRs: need at least one review")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
