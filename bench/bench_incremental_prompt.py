"""Cost of a follow-up push: what the reviewer is sent, incremental vs full, measured in one run.

A 40-file MR is reviewed; then a one-file follow-up push is reviewed incrementally; then the very
same final state is reviewed in full (a second MR from a copy of the branch) as the baseline. The
figures are the prompt the real Copilot CLI sent to the (scripted) model: characters of our review
prompt, and the prompt tokens the model server reports for the whole request (the CLI's own system
prompt and tool schemas included). Target: incremental <= 15 % of full.

    .venv/bin/python bench/bench_incremental_prompt.py [--files 40] [--lines 60]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts.ids import review_id  # noqa: E402
from contracts.models import ReviewMRInput, ReviewMRResult  # noqa: E402
from devenv.stack import AGENT, running_service, stack_settings  # noqa: E402
from devenv.temporal_server import TemporalDevServer  # noqa: E402
from standins.gitlab import GitLabStandIn  # noqa: E402
from standins.model_server import ChatRequest, ModelServer, Reply  # noqa: E402


class CountingBrain:
    """Finishes every review at once and records the first request of each session."""

    def __init__(self) -> None:
        self.first_requests: list[ChatRequest] = []

    def __call__(self, request: ChatRequest) -> Reply:
        if request.turn == 0:
            self.first_requests.append(request)
            return Reply.call("reviewer-finish_review", summary="Reviewed.")
        return Reply.text("Done.")


def module(n: int, lines: int, variant: str = "") -> str:
    body = [f'"""Module {n}{variant}."""', ""]
    for i in range(lines // 3):
        body += [f"def function_{n}_{i}(value):", f"    return value * {i + 1}  # {variant}", ""]
    return "\n".join(body) + "\n"


async def review(client, settings, project_id: int, iid: int, sha: str) -> ReviewMRResult:
    return await client.execute_workflow(
        "ReviewMR",
        ReviewMRInput(project_id=project_id, mr_iid=iid, head_sha=sha),
        id=review_id(project_id, iid, sha),
        task_queue=settings.temporal_task_queue,
        result_type=ReviewMRResult,
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--lines", type=int, default=60)
    args = parser.parse_args()
    brain = CountingBrain()
    with (
        tempfile.TemporaryDirectory() as tmp,
        TemporalDevServer() as temporal,
        GitLabStandIn(Path(tmp) / "gitlab") as gitlab,
        ModelServer(brain=brain) as model,
    ):
        agent = gitlab.add_user(AGENT)
        gitlab.add_user("dev")
        gitlab.create_project("bench/app", {"README.md": "bench\n"}, members={AGENT: 30, "dev": 30})
        files = {f"pkg/module_{n}.py": module(n, args.lines) for n in range(args.files)}
        gitlab.commit("bench/app", "feature", files, "feat: 40 modules", author="dev")
        mr = gitlab.create_mr("bench/app", "feature", title="Forty modules", author="dev")
        pid = gitlab.store.project("bench/app").id
        settings = stack_settings(
            temporal_address=temporal.address,
            task_queue="bench-incremental",
            gitlab=gitlab,
            agent_token=agent.token,
            model=model,
            work=Path(tmp) / "work",
            review_max_diff_lines=100_000,
        )
        async with running_service(settings) as (client, _):
            await review(client, settings, pid, mr.iid, gitlab.mr_json("bench/app", mr.iid)["sha"])
            follow_up = gitlab.commit(
                "bench/app",
                "feature",
                {"pkg/module_0.py": module(0, args.lines, "v2")},
                "fix: module 0",
                author="dev",
            )
            incremental = await review(client, settings, pid, mr.iid, follow_up)
            gitlab.commit(
                "bench/app",
                "feature-copy",
                {"COPY": "same state\n"},
                "copy",
                from_branch="feature",
                author="dev",
            )
            copy = gitlab.create_mr("bench/app", "feature-copy", title="Same state, full", author="dev")
            full = await review(client, settings, pid, copy.iid, gitlab.mr_json("bench/app", copy.iid)["sha"])
        assert incremental.status == full.status == "posted", (incremental, full)
        first, inc, base = brain.first_requests
        our_inc, our_full = len(inc.last_user_text), len(base.last_user_text)
        tokens_inc, tokens_full = inc.prompt_chars // 4, base.prompt_chars // 4
        print(f"MR: {args.files} files x {args.lines} lines; follow-up push changes 1 file")
        print(
            f"full review of the final state:  review prompt {our_full:8d} chars, whole request ~{tokens_full:7d} tokens"
        )
        print(
            f"incremental review of the push:  review prompt {our_inc:8d} chars, whole request ~{tokens_inc:7d} tokens"
        )
        print(
            f"incremental / full: {100 * our_inc / our_full:.1f} % of our prompt, "
            f"{100 * tokens_inc / tokens_full:.1f} % of the whole request (target <= 15 %)"
        )


if __name__ == "__main__":
    asyncio.run(main())
