"""The repository's skills and custom agents, read from a trusted commit (the target branch) and laid
out as the Copilot CLI's personal configuration of one run (`$HOME/.copilot/skills/<skill>/...`,
`$HOME/.copilot/agents/<name>.agent.md`).

Why the run's HOME and not the clone: the CLI discovers project skills and agents in its working
directory, which is the MR's head, written by the MR's author. The run's HOME is made fresh by the
service, so what it holds is what the service put there: the target branch's versions. The clone's
own skill directories are switched off for the run (`ignored_skill_locations`, written to the HOME's
`settings.json` by executors/copilot_cli.py), and the agent tool that could reach the clone's agents
(`task`) is never offered; a custom agent is only ever selected by name from this HOME
(measured against CLI 1.0.102: a same-named agent in the clone does not replace it; see
tests/agent/test_repo_config.py).

Sources, first one wins on a name clash: `.github/skills/`, `.claude/skills/`, `.agents/skills/`
(each skill a directory with a `SKILL.md`), `.github/agents/*.agent.md`, `.claude/agents/*.agent.md`.
Only regular files are copied (no symlinks, no submodules), within bounds.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.repo_agents import AGENT_SUFFIX, CustomAgent, parse_agent, with_report_tools
from executors import report_tool
from executors.git_repo import git

log = logging.getLogger(__name__)

SKILL_ROOTS = (".github/skills/", ".claude/skills/", ".agents/skills/")
AGENT_ROOTS = (".github/agents/", ".claude/agents/")
SKILL_FILE = "SKILL.md"
MAX_SKILLS = 50
MAX_AGENTS = 50
MAX_FILE_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 4 * 1024 * 1024
_REGULAR = ("100644", "100755")


@dataclass(frozen=True)
class RepoConfig:
    """What one run gets: `home` holds the `.copilot` tree to copy into the run's HOME."""

    home: Path
    skills: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<path>: why", for the logs


def skill_locations(workdir: Path) -> list[str]:
    """The clone's own project-skill directories, which a run must never load."""
    roots = {workdir, workdir.resolve()}
    return sorted(str(root / r.rstrip("/")) for root in roots for r in SKILL_ROOTS)


def repo_config_at(repo: Path, sha: str, dest: Path, report_server: str) -> RepoConfig:
    """Skills and agents of `repo` as of `sha`, written under `dest/.copilot`."""
    listing = git(repo, "ls-tree", "-r", "-z", sha, "--", *SKILL_ROOTS, *AGENT_ROOTS, check=False)
    entries = []
    for row in listing.split("\0"):
        meta, _, path = row.partition("\t")
        parts = meta.split()
        if len(parts) == 3:
            entries.append((parts[0], parts[1], parts[2], path))
    config = RepoConfig(home=dest / ".copilot")
    budget = MAX_TOTAL_BYTES
    skill_dirs = _skill_dirs(entries)
    for name, (root, files) in sorted(skill_dirs.items()):
        if len(config.skills) >= MAX_SKILLS:
            config.skipped.append(f"{root}{name}/: more than {MAX_SKILLS} skills")
            continue
        written = 0
        for mode, oid, path in files:
            if mode not in _REGULAR:
                config.skipped.append(f"{path}: not a regular file")
                continue
            data = _blob(repo, oid)
            if data is None or len(data) > min(MAX_FILE_BYTES, budget):
                config.skipped.append(f"{path}: over the size limit")
                continue
            target = config.home / "skills" / name / path[len(root) + len(name) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            budget -= len(data)
            written += 1
        if (config.home / "skills" / name / SKILL_FILE).is_file():
            config.skills.append(name)
        elif written:
            config.skipped.append(f"{root}{name}/: no {SKILL_FILE} copied")
    for agent in _agents(repo, entries, config):
        target = config.home / "agents" / f"{agent.name}{AGENT_SUFFIX}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(with_report_tools(agent, report_server).render(), encoding="utf-8")
        config.agents.append(agent.name)
    for note in config.skipped:
        log.info("repository configuration not used: %s", note[:300])
    return config


def _skill_dirs(entries: list[tuple[str, str, str, str]]) -> dict[str, tuple[str, list]]:
    """Skill name -> (root, [(mode, oid, path)]); a name under an earlier root wins."""
    found: dict[str, tuple[str, list]] = {}
    for root in SKILL_ROOTS:
        for mode, kind, oid, path in entries:
            if kind not in ("blob", "commit") or not path.startswith(root):
                continue
            name, sep, _rest = path[len(root) :].partition("/")
            if not sep or not name or name.startswith("."):
                continue
            owner = found.setdefault(name, (root, []))
            if owner[0] == root:
                owner[1].append((mode if kind == "blob" else "160000", oid, path))
    return found


def _agents(repo: Path, entries: list[tuple[str, str, str, str]], config: RepoConfig) -> list[CustomAgent]:
    agents: dict[str, CustomAgent] = {}
    for root in AGENT_ROOTS:
        for mode, kind, oid, path in entries:
            rest = path[len(root) :]
            if kind != "blob" or not path.startswith(root) or "/" in rest or not rest.endswith(AGENT_SUFFIX):
                continue
            if mode not in _REGULAR:
                config.skipped.append(f"{path}: not a regular file")
                continue
            data = _blob(repo, oid)
            parsed = parse_agent(data.decode("utf-8", "replace")) if data is not None else "unreadable"
            if isinstance(parsed, str):
                config.skipped.append(f"{path}: {parsed}")
            elif parsed.name in agents:
                config.skipped.append(f"{path}: agent {parsed.name!r} defined earlier")
            elif len(agents) >= MAX_AGENTS:
                config.skipped.append(f"{path}: more than {MAX_AGENTS} agents")
            else:
                agents[parsed.name] = parsed
    return list(agents.values())


def _blob(repo: Path, oid: str) -> bytes | None:
    shown = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "blob", oid], capture_output=True, timeout=30, check=False
    )
    if shown.returncode != 0 or len(shown.stdout) > MAX_FILE_BYTES:
        return None
    return shown.stdout


@contextmanager
def trusted_repo_config(repo: Path, sha: str, kind: str, agent_name: str) -> Iterator[dict[str, Any]]:
    """The CopilotRun options of one run from the target branch `sha`: the HOME tree, whether to offer
    the skill tool, and the custom agent `agent_name` when that branch defines it."""
    with tempfile.TemporaryDirectory(prefix="repo-config-") as tmp:
        config = repo_config_at(repo, sha, Path(tmp), report_tool.SERVER_NAMES[kind])
        agent = agent_name if agent_name in config.agents else ""
        if agent_name and not agent:
            log.warning("custom agent %r is not defined on the target branch; running without it", agent_name)
        yield {
            "config_home": config.home if config.skills or config.agents else None,
            "skills": bool(config.skills),
            "custom_agent": agent,
        }
