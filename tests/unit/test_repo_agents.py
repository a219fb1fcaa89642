"""Custom agents' front matter as the seed read it, and the target-branch skill/agent layout."""

from __future__ import annotations

import subprocess
from pathlib import Path

from core.repo_agents import parse_agent, with_report_tools
from executors.repo_config import repo_config_at, skill_locations


def test_agent_front_matter_is_read_and_files_without_a_name_are_refused():
    agent = parse_agent(
        "---\nname: sec\ndescription: Reviews security\ntools: [view]\ninfer: true\n---\nBody.\n"
    )
    assert not isinstance(agent, str)
    assert (agent.name, agent.description, agent.body) == ("sec", "Reviews security", "Body.\n")
    assert parse_agent("Just text.") == "no YAML front matter"
    assert parse_agent("---\ndescription: x\n---\nb") == "front matter has no usable `name`"
    assert parse_agent("---\nname: ../../etc\n---\nb") == "front matter has no usable `name`"
    assert parse_agent("---\nname: [unclosed\n---\nb").startswith("front matter is not YAML")


def test_report_tools_are_added_to_an_agents_tool_list_never_a_new_list():
    agent = parse_agent("---\nname: sec\ntools: [view, grep]\n---\nB\n")
    narrowed = with_report_tools(agent, "reviewer")
    assert narrowed.front_matter["tools"] == ["view", "grep", "reviewer/*"]
    assert "tools:\n- view\n- grep\n- reviewer/*" in narrowed.render()
    open_agent = parse_agent("---\nname: all\n---\nB\n")
    assert with_report_tools(open_agent, "reviewer") is open_agent


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_layout_first_root_wins_symlinks_and_bad_agents_are_skipped(tmp_path: Path):
    repo = tmp_path / "r"
    files = {
        ".github/skills/lint/SKILL.md": "---\nname: lint\ndescription: GH\n---\n",
        ".github/skills/lint/run.sh": "echo lint\n",
        ".claude/skills/lint/SKILL.md": "---\nname: lint\ndescription: CLAUDE\n---\n",
        ".claude/skills/docs/SKILL.md": "---\nname: docs\ndescription: D\n---\n",
        ".agents/skills/noskill/readme.txt": "no SKILL.md\n",
        ".github/agents/a.agent.md": "---\nname: a\n---\nA\n",
        ".claude/agents/a.agent.md": "---\nname: a\n---\nsecond a\n",
        ".claude/agents/bad.agent.md": "no front matter\n",
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    (repo / ".github/skills/lint/secret").symlink_to("/etc/passwd")
    _git(tmp_path, "init", "-q", str(repo))
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x")
    config = repo_config_at(repo, "HEAD", tmp_path / "out", "reviewer")
    assert config.skills == ["docs", "lint"] and config.agents == ["a"]
    assert "GH" in (config.home / "skills/lint/SKILL.md").read_text()
    assert (config.home / "skills/lint/run.sh").is_file()
    assert not (config.home / "skills/lint/secret").exists()
    assert "second a" not in (config.home / "agents/a.agent.md").read_text()
    notes = "\n".join(config.skipped)
    assert ".github/skills/lint/secret: not a regular file" in notes
    assert ".claude/agents/bad.agent.md: no YAML front matter" in notes
    assert ".agents/skills/noskill/: no SKILL.md copied" in notes
    assert str(tmp_path / "w/.claude/skills") in skill_locations(tmp_path / "w")
