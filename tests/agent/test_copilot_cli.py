"""The real Copilot CLI against the scripted model server: tools, sandbox, environment, failures."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from executors.copilot_cli import (
    AgentFailed,
    AgentNoResult,
    AgentTimeout,
    CopilotRun,
    build_env,
    run_copilot,
)
from executors.report_tool import Finding
from standins.model_server import ModelServer, Reply, ScriptedBrain

from .conftest import PROVIDER_KEY

FINDING = {
    "file": "app.py",
    "line": 2,
    "severity": "critical",
    "title": "eval on input",
    "body": "Never eval request data.",
    "suggestion": "    return json.loads(data)",
}
MakeRun = Callable[..., CopilotRun]


def tool_messages(server: ModelServer) -> list[str]:
    """Tool results the CLI sent back to the model, in order (from the last request)."""
    last = server.completions()[-1]
    return [m["content"] for m in last.messages if m.get("role") == "tool"]


def processes_in(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == directory:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_review_returns_validated_findings(model_server: ModelServer, make_run: MakeRun) -> None:
    model_server.brain = ScriptedBrain().when(
        Reply.call("view", path="app.py"),
        Reply.call("reviewer-report_finding", FINDING),
        Reply.call("reviewer-finish_review", summary="One critical issue."),
        Reply.text("Review done."),
        prompt_contains="Review this change",
    )
    outcome = await run_copilot(make_run("Review this change"))

    assert outcome.findings == [Finding(**FINDING)]
    assert outcome.findings[0].side == "new" and outcome.findings[0].end_line is None
    assert outcome.summary == "One critical issue."
    assert outcome.final_message == "Review done."
    assert outcome.exit_code == 0 and outcome.invalid_reports == 0
    assert outcome.usage is not None and outcome.usage.prompt_tokens > 1000
    assert outcome.usage.completion_tokens > 0
    # the view tool worked inside the clone (which lives in the temp dir despite --disallow-temp-dir)
    assert "eval(data)" in tool_messages(model_server)[0]
    offered = set(model_server.completions()[0].tools)
    assert offered == {
        "view",
        "grep",
        "glob",
        "reviewer-report_finding",
        "reviewer-report_resolution",
        "reviewer-finish_review",
    }


async def test_azure_openai_v1_review_through_the_proxy(model_server: ModelServer, make_run: MakeRun) -> None:
    """COPILOT_PROVIDER_TYPE=azure with the resource's endpoint as base URL: the CLI speaks Azure
    OpenAI's v1 API (`/openai/v1/...`, key in `api-key`; no api-version: the seed's 2024-10-21 was
    for the older deployments path), through the sandbox's model proxy, which swaps in the key."""
    model_server.brain = ScriptedBrain().when(
        Reply.call("reviewer-report_finding", FINDING),
        Reply.call("reviewer-finish_review", summary="Azure review."),
        Reply.text("Review done."),
        prompt_contains="Review on Azure",
    )
    outcome = await run_copilot(
        make_run("Review on Azure", provider_type="azure", provider_base_url=model_server.root_url)
    )

    assert outcome.findings == [Finding(**FINDING)] and outcome.summary == "Azure review."
    paths = {r.path for r in model_server.completions()}
    assert paths == {"/openai/v1/chat/completions"}


async def test_invalid_finding_is_refused_and_the_corrected_call_accepted(
    model_server: ModelServer, make_run: MakeRun
) -> None:
    model_server.brain = ScriptedBrain().when(
        Reply.call("reviewer-report_finding", {**FINDING, "severity": "huge"}),
        Reply.call("reviewer-report_finding", FINDING),
        Reply.call("reviewer-finish_review", summary="Fixed my format."),
        prompt_contains="Review",
    )
    outcome = await run_copilot(make_run("Review"))

    error, accepted, _ = tool_messages(model_server)
    assert "severity" in error and "'critical', 'major', 'minor' or 'info'" in error and '"huge"' in error
    assert accepted == "Recorded report_finding."
    assert [f.severity for f in outcome.findings] == ["critical"]


async def test_review_cannot_write_or_run_commands(
    model_server: ModelServer, make_run: MakeRun, workdir: Path
) -> None:
    model_server.brain = ScriptedBrain().when(
        Reply.calls(
            ("create", {"path": "pwned.txt", "file_text": "x"}),
            ("edit", {"path": "app.py", "old_str": "eval", "new_str": "exec"}),
            ("bash", {"command": "touch ran.txt", "description": "write"}),
        ),
        Reply.call("reviewer-finish_review", summary="Tried."),
        prompt_contains="Review",
    )
    outcome = await run_copilot(make_run("Review"))

    assert os.listdir(workdir) == ["app.py"]
    assert "eval" in (workdir / "app.py").read_text()
    assert all("does not exist" in message for message in tool_messages(model_server)[:3])
    assert outcome.modified_files == []


async def test_write_mode_edits_files(model_server: ModelServer, make_run: MakeRun, workdir: Path) -> None:
    model_server.brain = ScriptedBrain().when(
        Reply.call("edit", path="app.py", old_str="eval(data)", new_str="json.loads(data)"),
        Reply.calls(
            ("discussion-report_change", {"summary": "Use json.loads", "commit_type": "fix"}),
            ("discussion-reply", {"body": "Done: replaced eval with json.loads."}),
        ),
        Reply.text("Changed it."),
        prompt_contains="please fix",
    )
    outcome = await run_copilot(make_run("please fix the eval", kind="discussion", write_access=True))

    assert (workdir / "app.py").read_text() == "def handler(data):\n    return json.loads(data)\n"
    assert outcome.modified_files == ["app.py"]
    assert outcome.reply == "Done: replaced eval with json.loads."
    assert outcome.change is not None and outcome.change.commit_type == "fix"
    assert "bash" in model_server.completions()[0].tools


async def test_environment_allowlist_keeps_secrets_from_the_agent(
    model_server: ModelServer, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "canary-gitlab-token-4711")
    monkeypatch.setenv("JIRA_API_TOKEN", "canary-jira-token-4712")
    model_server.brain = ScriptedBrain().when(
        Reply.call("bash", command="env; echo MARK", description="show env"),
        Reply.call("implementer-report_implementation", summary="env shown", commit_summary="chore: env"),
        Reply.text(f"leaking {PROVIDER_KEY} and canary-gitlab-token-4711"),
        prompt_contains="show env",
    )
    outcome = await run_copilot(
        make_run(
            "show env",
            kind="implement",
            write_access=True,
            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            redact=("canary-gitlab-token-4711",),
        )
    )

    env_dump = tool_messages(model_server)[0]
    assert "MARK" in env_dump and "HOME=" in env_dump  # the command really ran
    assert "canary" not in env_dump
    assert PROVIDER_KEY not in env_dump  # stripped by --secret-env-vars
    assert "TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c" in env_dump
    # the CLI masks its secret env values itself ("******"); we scrub the rest
    assert PROVIDER_KEY not in outcome.final_message
    assert outcome.final_message.endswith("and [REDACTED]")
    assert outcome.implementation is not None and outcome.implementation.commit_summary == "chore: env"


def test_environment_is_built_from_an_allowlist(make_run: MakeRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "canary")
    monkeypatch.setenv("COPILOT_PROVIDER_HEADERS", "X-Evil: 1")
    run = make_run("x", extra_env={"COPILOT_PROVIDER_WIRE_API": "completions"})
    env = build_env(run, Path("/tmp/home"))
    assert set(env) == {
        "PATH",
        "LANG",
        "HOME",
        "XDG_CACHE_HOME",
        "COPILOT_MODEL",
        "COPILOT_PROVIDER_BASE_URL",
        "COPILOT_OFFLINE",
        "COPILOT_PROVIDER_API_KEY",
        "COPILOT_PROVIDER_WIRE_API",
    } | ({"LC_ALL"} & set(os.environ)) | ({"TZ"} & set(os.environ))
    github = build_env(
        make_run("x", provider_base_url="", provider_api_key=None, github_token="ghp_x"), Path("/h")
    )
    assert github["COPILOT_GITHUB_TOKEN"] == "ghp_x" and "COPILOT_OFFLINE" not in github
    with pytest.raises(ValueError, match="may not override HOME"):
        build_env(make_run("x", extra_env={"HOME": "/root"}), Path("/h"))


async def test_timeout_kills_the_process_tree(
    model_server: ModelServer, make_run: MakeRun, workdir: Path
) -> None:
    model_server.stall_next(1, 60)
    started = time.monotonic()
    with pytest.raises(AgentTimeout, match="exceeded 3 s"):
        await run_copilot(make_run("anything", timeout_s=3))
    assert time.monotonic() - started < 10
    assert processes_in(workdir) == []


async def test_provider_errors_are_retried_by_the_cli(model_server: ModelServer, make_run: MakeRun) -> None:
    model_server.fail_next(2, status=500, retry_after=0.1)
    model_server.brain = ScriptedBrain().when(
        Reply.call("reviewer-finish_review", summary="Fine."), prompt_contains="Review"
    )
    outcome = await run_copilot(make_run("Review"))
    assert model_server.failures_served == 2
    assert outcome.summary == "Fine."


async def test_bad_api_key_fails_clearly_without_leaking_it(make_run: MakeRun) -> None:
    with pytest.raises(AgentFailed) as raised:
        await run_copilot(make_run("Review", provider_api_key="sk-wrong-key-987654321"))
    assert raised.value.exit_code == 1
    assert "401" in str(raised.value) or "auth" in str(raised.value).lower()
    assert "sk-wrong-key-987654321" not in str(raised.value) + raised.value.log_tail


async def test_model_server_down_is_a_clear_failure(make_run: MakeRun) -> None:
    # the sandbox reaches the provider only through the model proxy, which answers 502 with the
    # reason; the CLI retries that 5 times (about 15 s) and gives up with the proxy's message
    with pytest.raises(AgentFailed, match="502 model provider unreachable"):
        await run_copilot(make_run("Review", provider_base_url="http://127.0.0.1:9/v1", timeout_s=90))


async def test_review_without_finish_is_no_result_and_keeps_reports(
    model_server: ModelServer, make_run: MakeRun
) -> None:
    model_server.brain = ScriptedBrain().when(
        Reply.call("reviewer-report_finding", FINDING),
        Reply.text("Forgot to finish."),
        prompt_contains="Review",
    )
    with pytest.raises(AgentNoResult, match="finish_review") as raised:
        await run_copilot(make_run("Review", follow_ups=0))
    assert raised.value.reports == [Finding(**FINDING)]
    assert raised.value.final_message == "Forgot to finish."


async def test_a_run_that_forgets_its_report_gets_a_follow_up_in_the_same_session(
    model_server: ModelServer, make_run: MakeRun
) -> None:
    # The scripted brain reports a finding, then stops without finish_review; the follow-up finishes.
    model_server.brain = ScriptedBrain().when(
        Reply.call("reviewer-report_finding", FINDING),
        Reply.text("Forgot to finish."),
        Reply.call("reviewer-finish_review", summary="Finished after the nudge."),
        prompt_contains="Review",
    )
    outcome = await run_copilot(make_run("Review the change"))
    assert outcome.summary == "Finished after the nudge." and outcome.follow_ups == 1
    assert outcome.findings == [Finding(**FINDING)]  # what the first send reported is kept
    last = model_server.completions()[-1]
    users = [m for m in last.messages if m["role"] == "user"]
    # the same session: the first prompt, the model's earlier turns and the follow-up, in order
    assert "Review the change" in str(users[0]["content"])
    assert "You stopped without calling `reviewer-finish_review`" in str(users[-1]["content"])
    assert any(m["role"] == "assistant" and m.get("content") == "Forgot to finish." for m in last.messages)


async def test_after_two_follow_ups_without_the_report_the_run_has_no_result(
    model_server: ModelServer, make_run: MakeRun
) -> None:
    model_server.brain = ScriptedBrain(default="I will not.")
    with pytest.raises(AgentNoResult, match="2 follow-up messages"):
        await run_copilot(make_run("Review"))
    follow_ups = [r for r in model_server.completions() if "You stopped without calling" in str(r.messages)]
    assert len(follow_ups) == 2


async def test_prompt_larger_than_argv_limit_is_passed_on_stdin(
    model_server: ModelServer, make_run: MakeRun
) -> None:
    prompt = "Review " + "x" * 300_000 + " END-OF-PROMPT"
    model_server.brain = ScriptedBrain().when(
        Reply.call("reviewer-finish_review", summary="Big."), prompt_contains="END-OF-PROMPT"
    )
    outcome = await run_copilot(make_run(prompt))
    assert outcome.summary == "Big."


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"write_access": True}, "read-only"),
        ({"workdir": Path("/nonexistent/clone")}, "not a directory"),
        ({"provider_base_url": "", "github_token": None}, "no model provider"),
        ({"executable": "/nonexistent/copilot"}, "not found"),
        ({"prompt": "  "}, "empty prompt"),
        ({"extra_env": {"BAD NAME": "x"}}, "invalid extra_env"),
    ],
)
async def test_bad_requests_are_refused_before_starting(
    make_run: MakeRun, overrides: dict[str, object], message: str
) -> None:
    prompt = str(overrides.pop("prompt", "Review"))
    with pytest.raises(ValueError, match=message):
        await run_copilot(make_run(prompt, **overrides))
