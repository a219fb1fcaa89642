"""What a worker can reach; each check is bounded and reports a reason, never a secret."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import gitlab
from temporalio import activity

from activities.project_allowlist import allowlist_check
from contracts import VERSION
from contracts.models import CheckResult, DiagnoseResult
from contracts.project_map import DEFAULT_CREDENTIAL
from contracts.settings import Settings, TaskExecutor
from executors import process_sandbox
from executors.copilot_cli import scrub

VERSION_TIMEOUT_S = 60


def _command(name: str, argv: list[str]) -> CheckResult:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
        return CheckResult(name=name, ok=True, detail=out.stdout.strip().splitlines()[0][:200])
    except (OSError, subprocess.SubprocessError) as exc:
        return CheckResult(name=name, ok=False, detail=type(exc).__name__)


def _gitlab(settings: Settings) -> list[CheckResult]:
    """One check per GitLab credential: "gitlab" (GITLAB_TOKEN), "gitlab:<alias>" for the others."""
    if not settings.credential_aliases():
        return [CheckResult(name="gitlab", ok=False, detail="GITLAB_TOKEN not set")]
    checks = []
    for alias in settings.credential_aliases():
        name = "gitlab" if alias == DEFAULT_CREDENTIAL else f"gitlab:{alias}"
        token = settings.gitlab_token_of(alias)
        assert token is not None
        try:
            gl = gitlab.Gitlab(settings.gitlab_url, private_token=token.get_secret_value(), timeout=10)
            gl.auth()
            assert gl.user is not None
            checks.append(CheckResult(name=name, ok=True, detail=f"authenticated as {gl.user.username}"))
        except gitlab.GitlabAuthenticationError:
            checks.append(CheckResult(name=name, ok=False, detail="token rejected (401)"))
        except Exception as exc:  # unreachable, TLS, DNS ...: report the kind, not the message
            checks.append(CheckResult(name=name, ok=False, detail=f"unreachable ({type(exc).__name__})"))
    return checks


class DiagnoseActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @activity.defn(name="diagnose_worker")
    def diagnose_worker(self) -> DiagnoseResult:
        return _diagnose(self.settings)


def _first_line(text: str) -> str:
    # The CLI prints the error first, then a stack and an object dump: the first line says it.
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def _usable_dir(name: str, path: Path, variable: str, *, write: bool) -> CheckResult:
    """The directory exists or can be made (and, with `write`, this user may write there). The
    image's pre-warmed Copilot cache is read-only on purpose: the CLI only reads it once unpacked."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return CheckResult(
            name=name, ok=False, detail=f"cannot create {path} ({exc.strerror}); set {variable}"
        )
    if write and not os.access(path, os.W_OK | os.X_OK):
        return CheckResult(name=name, ok=False, detail=f"{path} is not writable; set {variable}")
    return CheckResult(name=name, ok=True, detail=str(path))


def _copilot(settings: Settings) -> CheckResult:
    """`copilot --version`, the way an agent run starts it: its cache dir, a minimal environment.
    On failure the detail names the cause: a missing executable, or the exit code and the CLI's
    first line of stderr (e.g. `ENOENT: ... mkdir '/app/.data'` when the cache dir cannot be written)."""
    executable, cache = settings.copilot_executable, settings.copilot_cache_path
    env = {"XDG_CACHE_HOME": str(cache), "PATH": "/usr/bin:/bin"}
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, env=env
        )
    except FileNotFoundError:
        return CheckResult(
            name="copilot-cli", ok=False, detail=f"not found: {executable}; set COPILOT_CLI_PATH"
        )
    except PermissionError:
        return CheckResult(name="copilot-cli", ok=False, detail=f"not executable: {executable}")
    except subprocess.TimeoutExpired:
        return CheckResult(
            name="copilot-cli", ok=False, detail=f"{executable} --version took over {VERSION_TIMEOUT_S} s"
        )
    except OSError as exc:
        return CheckResult(name="copilot-cli", ok=False, detail=f"cannot run {executable} ({exc.strerror})")
    if out.returncode == 0:
        return CheckResult(name="copilot-cli", ok=True, detail=_first_line(out.stdout)[:100])
    reason = scrub(
        _first_line(out.stderr) or _first_line(out.stdout) or "no output", settings.secret_values()
    )
    return CheckResult(
        name="copilot-cli",
        ok=False,
        detail=f"{executable} --version exited {out.returncode} (XDG_CACHE_HOME={cache}): {reason}",
    )


def model_provider_check(settings: Settings) -> CheckResult:
    """What agent runs will talk to: a BYOK provider, or Copilot with GITHUB_TOKEN. Neither: every
    agent run is refused, so say it at start (the seed's start-up check), not at the first run."""
    if settings.copilot_provider_base_url:
        host = urlsplit(settings.copilot_provider_base_url).hostname or "?"
        kind = settings.copilot_provider_type or "openai"
        key = "with" if settings.copilot_provider_api_key else "without"
        return CheckResult(name="model-provider", ok=True, detail=f"BYOK {kind} at {host}, {key} an API key")
    if settings.github_token is not None and settings.github_token.get_secret_value():
        return CheckResult(name="model-provider", ok=True, detail="GitHub Copilot with GITHUB_TOKEN")
    return CheckResult(
        name="model-provider",
        ok=False,
        detail="no model provider: set COPILOT_PROVIDER_BASE_URL (BYOK) or GITHUB_TOKEN; agent runs are refused",
    )


def _sandbox(settings: Settings) -> CheckResult:
    """The local executor runs agents only in a bubblewrap sandbox; without one it refuses them."""
    if settings.task_executor != TaskExecutor.LOCAL:
        return CheckResult(name="agent-sandbox", ok=True, detail="not needed (the Job's pod is the sandbox)")
    try:
        process_sandbox.check()
    except process_sandbox.SandboxUnavailable as exc:
        return CheckResult(name="agent-sandbox", ok=False, detail=str(exc)[:300])
    limits = ", ".join(process_sandbox.cgroup_support()) or "rlimits only"
    return CheckResult(name="agent-sandbox", ok=True, detail=f"bubblewrap ({limits})")


def _diagnose(settings: Settings) -> DiagnoseResult:
    return DiagnoseResult(
        version=VERSION,
        task_executor=settings.task_executor.value,
        checks=[
            _command("git", ["git", "--version"]),
            _usable_dir("copilot-cache", settings.copilot_cache_path, "COPILOT_CACHE_DIR", write=False),
            _copilot(settings),
            model_provider_check(settings),
            _sandbox(settings),
            _usable_dir("work-dir", settings.work_path, "WORK_DIR", write=True),
            *_gitlab(settings),
            allowlist_check(settings),
        ],
    )
