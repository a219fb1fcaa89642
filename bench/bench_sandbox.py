"""What the local executor's sandbox costs: one review, sandboxed vs unsandboxed, same machine, same run.

Both variants run the same review (`run_task`, real Copilot CLI, scripted model: one finding and
finish_review) on the same clone. "sandboxed" is the service's path: a bubblewrap sandbox for the CLI
(executors/process_sandbox.py) with the model reached through a per-run lease on the model proxy's
unix socket. "unsandboxed" is the baseline, and exists only in this file: the CLI started directly,
talking to the model server itself (no proxy, no namespaces), as the executor did before the sandbox.

    .venv/bin/python bench/bench_sandbox.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts.settings import Settings  # noqa: E402
from executors.process_sandbox import JobContainer, ProcessSandbox  # noqa: E402
from executors.sandbox import run_task  # noqa: E402
from executors.tasks import RepoRef, ReviewTask  # noqa: E402
from standins.model_server import ModelServer, Reply, ScriptedBrain  # noqa: E402

KEY = "sk-bench-key-0123456789"


class Unsandboxed(JobContainer):
    """The baseline: processes started directly, the model URL and key passed through as they are.
    Never used by the service (the local executor only knows ProcessSandbox)."""


def make_repo(root: Path) -> tuple[Path, str, str]:
    repo = root / "repo"
    repo.mkdir(parents=True)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
        ).stdout

    git("init", "-q")
    git("config", "user.email", "b@b")
    git("config", "user.name", "b")
    (repo / "app.py").write_text("def handler(data):\n    return data\n")
    git("add", "-A")
    git("commit", "-qm", "base")
    base = git("rev-parse", "HEAD").strip()
    (repo / "app.py").write_text("def handler(data):\n    return eval(data)\n")
    git("commit", "-qam", "eval")
    return repo, base, git("rev-parse", "HEAD").strip()


async def one_review(sandbox: Any, settings: Settings, root: Path) -> float:
    repo, base, head = make_repo(Path(tempfile.mkdtemp(dir=root)))  # a fresh clone per run, as in the service
    task = ReviewTask(
        repo=RepoRef(clone_url="unused", head_sha=head), project_path="g/p", mr_iid=1, base_sha=base
    )
    started = time.monotonic()
    result = await run_task(task, repo, settings, sandbox=sandbox)
    elapsed = time.monotonic() - started
    assert any(getattr(r, "title", "") == "eval on input" for r in result.reports), result.reports
    return elapsed


async def main(runs: int) -> None:
    brain = ScriptedBrain().when(
        Reply.call(
            "reviewer-report_finding",
            {
                "file": "app.py",
                "line": 2,
                "severity": "critical",
                "title": "eval on input",
                "body": "No eval.",
            },
        ),
        Reply.call("reviewer-finish_review", summary="One issue."),
        Reply.text("done"),
        tool_offered="reviewer-finish_review",
    )
    with ModelServer(brain=brain, api_key=KEY) as model, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            copilot_provider_type="openai",
            copilot_provider_base_url=model.base_url,
            copilot_provider_api_key=KEY,
            copilot_model="scripted",
        )
        variants = {"unsandboxed": Unsandboxed(), "sandboxed": ProcessSandbox.from_settings(settings)}
        await one_review(variants["sandboxed"], settings, Path(tmp))  # warm page cache and CLI state
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(runs):  # interleaved, so load on the machine hits both alike
            for name, sandbox in variants.items():
                times[name].append(await one_review(sandbox, settings, Path(tmp)))
    for name, values in times.items():
        print(
            f"{name:12} one review: median {statistics.median(values):.2f} s, "
            f"min {min(values):.2f} s, max {max(values):.2f} s ({runs} runs)"
        )
    cost = statistics.median(times["sandboxed"]) - statistics.median(times["unsandboxed"])
    print(f"sandbox cost per review: {cost:+.2f} s (median difference)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
