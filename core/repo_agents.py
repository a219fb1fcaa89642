"""A repository's custom agents (`.github/agents/*.agent.md`, `.claude/agents/*.agent.md`), as the
seed read them: YAML front matter with `name` (required), `description`, `tools`, `display_name`,
`mcp_servers`, `infer`, ...; the markdown body is the agent's prompt. A file without front matter or
without a usable name is skipped, and says why.

The agent file is handed to the Copilot CLI (`--agent <name>`), which narrows the run's tools to the
agent's `tools` list. The service's report tools must stay reachable or the run could never hand in
its result, so `with_report_tools` adds them to a `tools` list; the CLI's `--available-tools` stays
the ceiling, so an agent can narrow the tools, never widen them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from core.sanitize import strip_unsafe

AGENT_SUFFIX = ".agent.md"
MAX_AGENT_BYTES = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class CustomAgent:
    name: str
    description: str
    front_matter: dict
    body: str

    def render(self) -> str:
        head = yaml.safe_dump(self.front_matter, sort_keys=False, allow_unicode=True).strip()
        return f"---\n{head}\n---\n{self.body}"


def parse_agent(text: str) -> CustomAgent | str:
    """The agent, or why the file is not one."""
    if len(text.encode()) > MAX_AGENT_BYTES:
        return f"over the {MAX_AGENT_BYTES}-byte limit"
    match = _FRONT_MATTER.match(text)
    if match is None:
        return "no YAML front matter"
    try:
        meta = yaml.safe_load(match[1])
    except yaml.YAMLError as exc:
        return f"front matter is not YAML: {str(exc).splitlines()[0][:200]}"
    if not isinstance(meta, dict):
        return "front matter is not a mapping"
    name = meta.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        return "front matter has no usable `name`"
    description = meta.get("description")
    return CustomAgent(
        name=name,
        description=strip_unsafe(description)[:1000] if isinstance(description, str) else "",
        front_matter=meta,
        body=strip_unsafe(text[match.end() :]),
    )


def with_report_tools(agent: CustomAgent, report_server: str) -> CustomAgent:
    """The agent with the service's report tools (`<server>/*`) added to a `tools` list it declares."""
    tools = agent.front_matter.get("tools")
    if tools is None:
        return agent  # no list: every tool the run offers
    listed = [str(t) for t in tools] if isinstance(tools, list) else [str(tools)]
    meta = {**agent.front_matter, "tools": [*listed, f"{report_server}/*"]}
    return CustomAgent(agent.name, agent.description, meta, agent.body)
