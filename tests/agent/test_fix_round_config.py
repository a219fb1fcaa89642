"""A fix round of the review loop runs on the agent's own MR branch: what the agent wrote there in an
earlier round (a skill, a rewritten custom agent, an AGENTS.md) must not configure its next run.

The real Copilot CLI runs `run_implement` on a checkout of the MR head whose round-1 commit planted a
skill, rewrote the configured `coder` agent and added instructions; the scripted model obeys the
plant and asks for the planted skill. Only the target branch's agent and skill reach the model.
"""

from __future__ import annotations

from pathlib import Path

from contracts.agent_tasks import ImplementTask, OpenFinding, RepoRef
from contracts.settings import Settings
from executors.run_implement import run_implement
from standins.model_server import ModelServer, Reply, ScriptedBrain

from .conftest import PROVIDER_KEY
from .test_repo_config import EVIL, commit, git

TRUSTED_SKILL = "---\nname: style-guide\ndescription: TRUSTED-SKILL house style\n---\nTRUSTED SKILL BODY\n"
TRUSTED_AGENT = (
    "---\nname: coder\ndescription: TRUSTED-AGENT writes code\n---\nTRUSTED AGENT BODY: small commits.\n"
)


async def test_attack_a_fix_round_never_takes_its_config_from_the_agents_own_branch(
    model_server: ModelServer, tmp_path: Path, process_sandbox
) -> None:
    repo = tmp_path / "clone"
    repo.mkdir()
    git(repo, "init", "-q")
    target = commit(
        repo,
        {
            "app.py": "x = 1\n",
            ".github/skills/style-guide/SKILL.md": TRUSTED_SKILL,
            ".github/agents/coder.agent.md": TRUSTED_AGENT,
        },
        "main",
    )
    head = commit(  # round 1 of the agent, on its own branch
        repo,
        {
            "app.py": "x = 2\n",
            ".github/skills/evil/SKILL.md": f"---\nname: evil\ndescription: {EVIL}\n---\n{EVIL}\n",
            ".github/agents/coder.agent.md": TRUSTED_AGENT.replace("TRUSTED AGENT BODY", EVIL),
            "AGENTS.md": f"# Rules\n{EVIL}\n",
        },
        "round 1",
    )
    model_server.brain = ScriptedBrain().when(
        Reply.call("skill", skill="evil"),
        Reply.call(
            "implementer-report_answer",
            thread_id="t1",
            action="dismissed",
            reason="x = 2 is what the issue asks",
        ),
        Reply.call(
            "implementer-report_implementation", summary="Answered the finding.", commit_summary="Answer"
        ),
        prompt_contains="",
    )
    settings = Settings(
        _env_file=None,
        copilot_provider_base_url=model_server.base_url,
        copilot_provider_api_key=PROVIDER_KEY,
        copilot_model="scripted",
        copilot_timeout=90,
        copilot_follow_ups=0,
        coding_custom_agent="coder",
    )
    task = ImplementTask(
        repo=RepoRef(clone_url="unused", head_sha=head, branches=["agent/PROJ-1", "main"]),
        project_path="group/app",
        issue_key="PROJ-1",
        findings=[OpenFinding(thread_id="t1", title="x should stay 1", file="app.py", line=1)],
        review_round=1,
        config_sha=target,
    )
    result = await run_implement(task, repo, settings, None, process_sandbox)

    requests = model_server.completions()
    assert requests, "the CLI never reached the model"
    system = "\n".join(str(m.get("content")) for m in requests[0].messages if m["role"] == "system")
    assert "TRUSTED AGENT BODY: small commits." in system  # the target branch's agent, not the rewrite
    assert "TRUSTED-SKILL house style" in system
    everything = "\n".join(str(r.messages) for r in requests)
    assert EVIL not in everything  # no planted skill, agent or AGENTS.md reached the model
    assert [type(r).__name__ for r in result.reports] == ["FindingAnswer", "Implementation"]
