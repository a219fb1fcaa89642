"""One run of the real Copilot CLI on a clone: sandboxed tools, a minimal environment, checked results.

`await run_copilot(CopilotRun(...))` is async so a Temporal activity can heartbeat and be cancelled
while it waits. The CLI runs in a sandbox of its own (`CopilotRun.sandbox`, executors/process_sandbox.py),
reaching its model only through a lease on the model proxy that ends when the CLI exits;
cancellation, the timeout and the CLI's exit destroy the sandbox and everything started in it.

What the CLI gets (measured against CLI 1.0.102, see tests/agent/):
- the prompt on stdin, never in argv (no 128 KiB MAX_ARG_STRLEN limit, not visible in `ps`);
- `--available-tools`: reviews see only view/grep/glob plus our report tools (MCP tools must be listed
  too, as `<server>-<tool>`, or they are hidden); `--deny-tool write/shell` backs that up, and
  `--disallow-temp-dir` keeps file tools out of other runs' temp dirs;
- an environment built from an allowlist (never os.environ wholesale), a fresh HOME per run, and
  `--secret-env-vars` so the CLI strips the provider key / GitHub token from shell and MCP children;
- the repository's skills and custom agents from the target branch only (executors/repo_config.py
  lays them out in the fresh HOME; the clone's own skill directories are ignored through the HOME's
  `settings.json`, and the `task` tool that would list the clone's agents is never offered), a custom
  agent by name (`--agent`), and pre-installed plugin directories (`--plugin-dir`); no plugin is
  ever fetched from a marketplace (the sandbox has no network but the model proxy).

The exit code alone proves nothing (denied tools still exit 0): the outcome is built from the report
tool's JSONL file. A run that ends without its required report gets up to `follow_ups` more messages
in the same CLI session (`--session-id` on the first send, `--resume` on the next, same HOME, same
report file: the model keeps its context and what it already reported), as the seed's SDK sessions
did; only then does it raise `AgentNoResult`. The whole run, follow-ups included, has one deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

import contracts
from contracts.agent_tasks import AgentTask, TokenUsage
from contracts.settings import Settings
from executors import report_tool
from executors.plugins import project_plugin_dirs
from executors.process_sandbox import Sandbox
from executors.repo_config import skill_locations
from executors.report_tool import (
    ChangeReport,
    DiscussionReply,
    Finding,
    FinishReview,
    Implementation,
    Plan,
    Report,
    Resolution,
)
from telemetry import cli_spans

Kind = Literal["review", "discussion", "implement", "plan"]

READ_TOOLS = ("view", "grep", "glob")
SKILL_TOOL = "skill"  # loads a skill's SKILL.md on demand; it lists only the skills of the run's HOME
WRITE_TOOLS = ("create", "edit", "bash", "read_bash", "write_bash", "stop_bash", "list_bash")
REQUIRED_REPORT: dict[str, type[BaseModel]] = {
    "review": FinishReview,
    "discussion": DiscussionReply,
    "implement": Implementation,
    "plan": Plan,
}
SECRET_ENV_VARS = ("COPILOT_PROVIDER_API_KEY", "COPILOT_GITHUB_TOKEN")
OUTPUT_TAIL_BYTES = 64 * 1024
MAX_LINE_BYTES = 32 * 1024 * 1024  # one JSONL event; tool results can be large
MAX_REPORT_BYTES = 8 * 1024 * 1024
MAX_MESSAGE_CHARS = 64 * 1024
REDACTED = "[REDACTED]"
READER_GRACE_S = 2.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AgentError(Exception):
    """Base of the run's typed failures; messages are secret-free."""


class AgentTimeout(AgentError):
    pass


class AgentFailed(AgentError):
    def __init__(self, message: str, exit_code: int | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.exit_code, self.log_tail = exit_code, log_tail


class AgentNoResult(AgentError):
    """The run ended normally without its required report; whatever it did report is kept."""

    def __init__(self, message: str, reports: list[Report] | None = None, final_message: str = "") -> None:
        super().__init__(message)
        self.reports, self.final_message = reports or [], final_message


@dataclass(frozen=True)
class CopilotRun:
    prompt: str
    workdir: Path
    kind: Kind
    cache_dir: Path
    executable: str
    sandbox: Sandbox = field(repr=False)  # the one door: executors/process_sandbox.py
    write_access: bool = False
    timeout_s: float = 600
    model: str = "gpt-4.1"
    provider_type: str = ""
    provider_base_url: str = ""
    provider_api_key: str | None = field(default=None, repr=False)
    github_token: str | None = field(default=None, repr=False)
    traceparent: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    redact: tuple[str, ...] = field(default=(), repr=False)  # more values to scrub from log tails
    log_dir: Path | None = None  # keep the CLI's logs here (default: deleted with the run dir)
    custom_instructions: bool = False  # AGENTS.md & co. come from the (untrusted) MR branch
    follow_ups: int = 2  # messages in the same session to a run that ended without its report
    config_home: Path | None = None  # a `.copilot` tree (target-branch skills/agents) for the HOME
    skills: bool = False  # offer the `skill` tool (the HOME or a plugin brings skills)
    custom_agent: str = ""  # run as this agent of `config_home` (`--agent`)
    plugin_dirs: tuple[str, ...] = ()  # pre-installed plugins (`--plugin-dir`), read-only

    @classmethod
    def from_settings(
        cls, settings: Settings, *, prompt: str, workdir: Path, kind: Kind, **overrides: Any
    ) -> CopilotRun:
        """A run configured like the service: provider, model, CLI path, cache and all its secrets.
        `plugins` are the project's plugin names (the task's), added after COPILOT_PLUGIN_DIRS;
        `project_model` the project's model (the task's), else COPILOT_MODEL."""
        plugins = overrides.pop("plugins", ())
        project_model = overrides.pop("project_model", None)
        key = settings.copilot_provider_api_key
        token = settings.github_token
        values: dict[str, Any] = {
            "timeout_s": settings.copilot_timeout,
            "model": project_model or settings.copilot_model,
            "provider_type": settings.copilot_provider_type,
            "provider_base_url": settings.copilot_provider_base_url,
            "provider_api_key": key.get_secret_value() if key else None,
            "github_token": token.get_secret_value() if token else None,
            "executable": settings.copilot_executable,
            "cache_dir": settings.copilot_cache_path,
            "redact": tuple(settings.secret_values()),
            "follow_ups": settings.copilot_follow_ups,
            "plugin_dirs": tuple(
                dict.fromkeys(
                    [
                        *settings.copilot_plugin_dirs,
                        *project_plugin_dirs(settings.copilot_plugin_root, plugins),
                    ]
                )
            ),
        }
        values.update(overrides)
        return cls(prompt=prompt, workdir=workdir, kind=kind, **values)

    @classmethod
    def for_task(
        cls,
        settings: Settings,
        task: AgentTask,
        *,
        sandbox: Sandbox,
        traceparent: str | None,
        **overrides: Any,
    ) -> CopilotRun:
        """`from_settings` for one agent task: the project's plugins and model come from the task
        the sandbox and the trace context from the executor."""
        return cls.from_settings(
            settings,
            plugins=task.plugins,
            project_model=task.model,
            sandbox=sandbox,
            traceparent=traceparent,
            **overrides,
        )

    @property
    def secrets(self) -> list[str]:
        values = [self.provider_api_key, self.github_token, *self.redact]
        # very short values would redact ordinary text and protect nothing
        return sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


class CopilotOutcome(BaseModel):
    exit_code: int
    final_message: str
    reports: list[Report]
    usage: TokenUsage | None
    duration_s: float
    log_tail: str
    modified_files: list[str]  # as the CLI reports them (its file tools; not changes made via bash)
    invalid_reports: int = 0  # lines of the report file that failed validation (only by tampering)
    follow_ups: int = 0  # follow-up messages it took to get the required report

    @property
    def findings(self) -> list[Finding]:
        return [r for r in self.reports if isinstance(r, Finding)]

    @property
    def resolutions(self) -> list[Resolution]:
        return [r for r in self.reports if isinstance(r, Resolution)]

    @property
    def summary(self) -> str | None:
        return next((r.summary for r in self.reports if isinstance(r, FinishReview)), None)

    @property
    def reply(self) -> str | None:
        return next((r.body for r in self.reports if isinstance(r, DiscussionReply)), None)

    @property
    def change(self) -> ChangeReport | None:
        return next((r for r in self.reports if isinstance(r, ChangeReport)), None)

    @property
    def implementation(self) -> Implementation | None:
        return next((r for r in self.reports if isinstance(r, Implementation)), None)


# --- building the command line and the environment -------------------------------------------------
def allowed_tools(run: CopilotRun) -> list[str]:
    server = report_tool.SERVER_NAMES[run.kind]
    ours = [f"{server}-{name}" for name in report_tool.TOOLS[run.kind]]
    skill = [SKILL_TOOL] if run.skills or run.plugin_dirs else []
    return [*READ_TOOLS, *(WRITE_TOOLS if run.write_access else ()), *skill, *ours]


def _report_file(run_dir: Path) -> Path:
    return run_dir / "report.jsonl"


def follow_up_prompt(kind: str, reports: int) -> str:
    """The message sent, in the same session, to a run that stopped without its required report."""
    tool = report_tool.SERVER_NAMES[kind] + "-" + _required_tool(kind)
    done = f"You already reported {reports} item(s); they are kept, do not repeat them. " if reports else ""
    return (
        f"You stopped without calling `{tool}`, so your work is not recorded yet. {done}"
        f"Finish the task as instructed and call `{tool}` exactly once now."
    )


def _required_tool(kind: str) -> str:
    return next(n for n, m in report_tool.TOOLS[kind].items() if m is REQUIRED_REPORT[kind])


def build_args(
    run: CopilotRun, run_dir: Path, log_dir: Path, session: tuple[str, str] | None = None
) -> list[str]:
    """The CLI's arguments; `session` is ("--session-id" | "--resume", <uuid>) for follow-up sends."""
    mcp = {
        "mcpServers": {
            report_tool.SERVER_NAMES[run.kind]: {
                "type": "local",
                # run by path with -I: needs no PYTHONPATH, ignores PYTHON* variables of the clone
                "command": sys.executable,
                "args": [
                    "-I",
                    report_tool.__file__,
                    "--kind",
                    run.kind,
                    "--out",
                    str(run_dir / "report.jsonl"),
                ],
                "tools": ["*"],
            }
        }
    }
    args = [
        run.executable,
        "--no-auto-update",
        "--output-format",
        "json",
        "--disable-client-telemetry",
        "--no-ask-user",
        "--disable-builtin-mcps",
        "--log-dir",
        str(log_dir),
        "--usage-output-file",
        str(run_dir / "usage.json"),
        "--additional-mcp-config",
        json.dumps(mcp),
        "--secret-env-vars",
        ",".join(SECRET_ENV_VARS),
        "--allow-all-tools",
        "--available-tools",
        *allowed_tools(run),
    ]
    if not run.write_access:
        args += ["--deny-tool", "write", "--deny-tool", "shell", "--disallow-temp-dir"]
    if not run.custom_instructions:
        args.append("--no-custom-instructions")
    for directory in run.plugin_dirs:
        args += ["--plugin-dir", directory]
    if run.custom_agent:
        args += ["--agent", run.custom_agent]
    if session is not None:
        args += list(session)
    return args


def build_env(run: CopilotRun, home: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(run.cache_dir),
        "COPILOT_MODEL": run.model,
    }
    for name in ("LC_ALL", "TZ"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    if run.provider_base_url:
        env["COPILOT_PROVIDER_BASE_URL"] = run.provider_base_url
        env["COPILOT_OFFLINE"] = "true"  # no GitHub network at all; also saves ~1.5 s of telemetry shutdown
        if run.provider_type:
            env["COPILOT_PROVIDER_TYPE"] = run.provider_type
        if run.provider_api_key:
            env["COPILOT_PROVIDER_API_KEY"] = run.provider_api_key
    elif run.github_token:
        env["COPILOT_GITHUB_TOKEN"] = run.github_token
    if run.traceparent:
        env["TRACEPARENT"] = run.traceparent
    for name, value in run.extra_env.items():
        if name in env or name in SECRET_ENV_VARS:
            raise ValueError(f"extra_env may not override {name}")
        env[name] = value
    return env


def _validate(run: CopilotRun) -> None:
    if run.kind not in report_tool.TOOLS:
        raise ValueError(f"kind must be one of {sorted(report_tool.TOOLS)}, not {run.kind!r}")
    if run.kind == "review" and run.write_access:
        raise ValueError("reviews run read-only; write_access must be False")
    if not run.workdir.is_dir():
        raise ValueError(f"workdir {run.workdir} is not a directory")
    if not (os.path.isfile(run.executable) and os.access(run.executable, os.X_OK)):
        raise ValueError(f"Copilot CLI not found or not executable: {run.executable}")
    if not run.provider_base_url and not run.github_token:
        raise ValueError("no model provider: set provider_base_url (BYOK) or a GitHub token")
    if not run.prompt.strip():
        raise ValueError("empty prompt")
    if run.timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    for name, value in run.extra_env.items():
        if not _ENV_NAME.match(name) or "\0" in value:
            raise ValueError(f"invalid extra_env entry {name!r}")
    for directory in run.plugin_dirs:
        if not os.path.isabs(directory) or not os.path.isdir(directory):
            raise ValueError(
                f"COPILOT_PLUGIN_DIRS entry {directory!r} is not an absolute path of a directory"
            )
    if run.custom_agent and not (
        run.config_home and (run.config_home / "agents" / f"{run.custom_agent}.agent.md").is_file()
    ):
        raise ValueError(f"custom agent {run.custom_agent!r} is not among the run's agents")


# What of the run's HOME survives from one send to the next: the CLI's session (for `--resume`).
SESSION_FILES = frozenset(
    {"session-state", "session-store.db", "session-store.db-wal", "session-store.db-shm"}
)


def prepare_home(run: CopilotRun, home: Path) -> None:
    """The run's personal CLI configuration: the trusted skills and agents, and the clone's own
    project-skill directories switched off (they are the MR author's).

    Made again before every send: a write agent can write to its HOME, and the next CLI process of a
    follow-up would read whatever it left there (an installed plugin, a skill, a settings file).
    Everything but the session itself is removed and laid out anew from the trusted sources."""
    copilot = home / ".copilot"
    for entry in list(home.iterdir()) if home.is_dir() else []:
        if entry.name != ".copilot" or entry.is_symlink() or not entry.is_dir():
            _remove(entry)
    for entry in list(copilot.iterdir()) if copilot.is_dir() else []:
        if entry.name not in SESSION_FILES or entry.is_symlink():
            _remove(entry)
    if run.config_home is not None and run.config_home.is_dir():
        shutil.copytree(run.config_home, copilot, symlinks=False, dirs_exist_ok=True)
    copilot.mkdir(exist_ok=True)
    settings = {"ignoredSkillsLocations": skill_locations(run.workdir)}
    (copilot / "settings.json").write_text(json.dumps(settings))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# --- running it ------------------------------------------------------------------------------------
class _Output:
    """Bounded capture of the CLI's JSONL stdout and stderr."""

    def __init__(self) -> None:
        self.tail: deque[str] = deque()
        self._tail_size = 0
        self.final_message = ""
        self.result: dict[str, Any] = {}
        self.errors: list[str] = []

    def _keep(self, text: str) -> None:
        self.tail.append(text)
        self._tail_size += len(text)
        while self._tail_size > OUTPUT_TAIL_BYTES and len(self.tail) > 1:
            self._tail_size -= len(self.tail.popleft())

    def stdout_line(self, line: str) -> None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            self._keep(line)
            return
        if not isinstance(event, dict):
            return
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        kind = event.get("type")
        if kind == "assistant.message" and isinstance(data.get("content"), str) and data["content"].strip():
            self.final_message = data["content"][:MAX_MESSAGE_CHARS]
        elif kind == "result":
            self.result = event
        elif kind in ("session.error", "session.warning") and isinstance(data.get("message"), str):
            self.errors = [*self.errors[-4:], data["message"][:2000]]
            self._keep(f"{kind}: {data['message'][:2000]}")

    def stderr_line(self, line: str) -> None:
        self._keep(line)


async def _read_lines(stream: asyncio.StreamReader, sink: Any) -> None:
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # a line over the limit: asyncio dropped it, carry on with the next
            sink("[line too long, dropped]")
            continue
        if not raw:
            return
        sink(raw.decode("utf-8", "replace").rstrip("\n"))


async def _feed(stdin: asyncio.StreamWriter, prompt: str) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(prompt.encode())
        await stdin.drain()
        stdin.close()


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _read_usage(path: Path) -> TokenUsage | None:
    try:
        data = json.loads(path.read_text()[:MAX_REPORT_BYTES])
        metrics = data.get("modelMetrics") or {}
        usages = [m.get("usage") or {} for m in metrics.values() if isinstance(m, dict)]
        return TokenUsage(
            prompt_tokens=sum(int(u.get("inputTokens", 0)) for u in usages),
            completion_tokens=sum(int(u.get("outputTokens", 0)) for u in usages),
        )
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def _read_reports(path: Path, kind: str) -> tuple[list[Report], int] | None:
    """Validated reports and the number of rejected lines; None if the report tool never started."""
    try:
        with path.open("rb") as handle:
            text = handle.read(MAX_REPORT_BYTES).decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    reports: list[Report] = []
    invalid = 0
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            reports.append(report_tool.parse_report(entry["tool"], entry["args"], kind))
        except (ValueError, KeyError, TypeError, ValidationError):
            invalid += 1
    return reports[: report_tool.MAX_CALLS], invalid


def _modified_files(result: dict[str, Any], workdir: Path) -> list[str]:
    usage = result.get("usage")
    changes = usage.get("codeChanges") if isinstance(usage, dict) else None
    paths = changes.get("filesModified") if isinstance(changes, dict) else None
    if not isinstance(paths, list):
        return []
    root = workdir.resolve()
    out = []
    for raw in paths:
        path = Path(str(raw))
        out.append(str(path.relative_to(root)) if path.is_relative_to(root) else str(path))
    return out


async def _send(
    run: CopilotRun,
    inside: CopilotRun,
    args: list[str],
    prompt: str,
    home: Path,
    run_dir: Path,
    log_dir: Path,
    access: Any,
    output: _Output,
) -> int:
    """One CLI process in the run's sandbox: the prompt on stdin, its exit code back."""
    async with run.sandbox.process(
        args,
        cwd=run.workdir,
        env=build_env(inside, home) | cli_spans.trace_file_env(run_dir),
        writable=[run.workdir, run_dir, log_dir],
        # the report tool runs by path and imports its models from contracts/ (code only)
        readable=[
            Path(run.executable).parent,
            run.cache_dir,
            Path(report_tool.__file__),
            Path(contracts.__file__).parent,
            *(Path(d) for d in run.plugin_dirs),
        ],
        route=access.route,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=MAX_LINE_BYTES,
    ) as proc:
        assert proc.stdin and proc.stdout and proc.stderr  # all three are PIPEs
        readers = asyncio.gather(
            _read_lines(proc.stdout, output.stdout_line),
            _read_lines(proc.stderr, output.stderr_line),
        )
        await _feed(proc.stdin, prompt)
        exit_code = await proc.wait()
        # a lingering grandchild may hold the pipes open: the CLI's exit is what counts
        done, _ = await asyncio.wait([readers], timeout=READER_GRACE_S)
        if not done:
            readers.cancel()
        return exit_code


async def run_copilot(run: CopilotRun) -> CopilotOutcome:
    """Run the CLI (with follow-ups in its session). Raises ValueError for a bad request, else
    AgentTimeout/AgentFailed/AgentNoResult."""
    _validate(run)
    run_dir = Path(tempfile.mkdtemp(prefix="copilot-run-"))
    secrets = run.secrets
    try:
        home = run_dir / "home"
        home.mkdir()
        log_dir = run.log_dir or run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        output = _Output()
        started = time.monotonic()
        session = str(uuid.uuid4())
        follow_ups = 0
        async with run.sandbox.model_access(
            run.provider_base_url, run.provider_api_key, run.provider_type, write_access=run.write_access
        ) as access:
            inside = dataclasses.replace(
                run, provider_base_url=access.base_url, provider_api_key=access.api_key
            )
            try:
                async with asyncio.timeout(run.timeout_s):
                    prompt, flag = run.prompt, "--session-id"
                    while True:
                        prepare_home(run, home)  # again for a follow-up: nothing the agent left counts
                        args = build_args(inside, run_dir, log_dir, (flag, session))
                        exit_code = await _send(
                            run, inside, args, prompt, home, run_dir, log_dir, access, output
                        )
                        parsed = _read_reports(_report_file(run_dir), run.kind)
                        if exit_code != 0 or parsed is None or follow_ups >= run.follow_ups:
                            break
                        if any(isinstance(r, REQUIRED_REPORT[run.kind]) for r in parsed[0]):
                            break
                        follow_ups += 1
                        prompt, flag = follow_up_prompt(run.kind, len(parsed[0])), "--resume"
            except TimeoutError:
                raise AgentTimeout(f"Copilot run exceeded {run.timeout_s:g} s and was killed") from None
            refusal = access.refusal()
        duration = time.monotonic() - started
        log_tail = scrub("\n".join(output.tail), secrets)[-OUTPUT_TAIL_BYTES:]
        if exit_code != 0:
            reason = output.errors[-1] if output.errors else "\n".join(list(output.tail)[-10:])
            if refusal:  # the CLI says "HTTP 403" (or "authentication failed"): name the real cause
                reason = f"{refusal} (the CLI said: {reason.strip()[-500:]})"
            message = scrub(f"Copilot CLI exited with {exit_code}: {reason.strip()[-2000:]}", secrets)
            raise AgentFailed(message, exit_code=exit_code, log_tail=log_tail)
        if parsed is None:
            raise AgentNoResult("the report tool (MCP server) never started; see the log tail")
        reports, invalid = parsed
        required = REQUIRED_REPORT[run.kind]
        if not any(isinstance(r, required) for r in reports):
            tool = _required_tool(run.kind)
            raise AgentNoResult(
                f"the agent finished without calling {tool} ({len(reports)} other reports, "
                f"{follow_ups} follow-up messages)",
                reports=reports,
                final_message=scrub(output.final_message, secrets),
            )
        return CopilotOutcome(
            exit_code=exit_code,
            final_message=scrub(output.final_message, secrets),
            reports=reports,
            usage=_read_usage(run_dir / "usage.json"),
            duration_s=round(duration, 3),
            log_tail=log_tail,
            modified_files=_modified_files(output.result, run.workdir),
            invalid_reports=invalid,
            follow_ups=follow_ups,
        )
    finally:
        # the CLI's own spans (written only while spans are exported) join the run's trace
        cli_spans.forward(run_dir / "cli-traces.jsonl", secrets=secrets)
        shutil.rmtree(run_dir, ignore_errors=True)
