"""What a worker can reach; each check is bounded and reports a reason, never a secret."""

from __future__ import annotations

import subprocess

import gitlab
from temporalio import activity

from contracts import VERSION
from contracts.models import CheckResult, DiagnoseResult
from contracts.settings import Settings


def _command(name: str, argv: list[str]) -> CheckResult:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
        return CheckResult(name=name, ok=True, detail=out.stdout.strip().splitlines()[0][:200])
    except (OSError, subprocess.SubprocessError) as exc:
        return CheckResult(name=name, ok=False, detail=type(exc).__name__)


def _gitlab(settings: Settings) -> CheckResult:
    if settings.gitlab_token is None:
        return CheckResult(name="gitlab", ok=False, detail="GITLAB_TOKEN not set")
    try:
        gl = gitlab.Gitlab(
            settings.gitlab_url, private_token=settings.gitlab_token.get_secret_value(), timeout=10
        )
        gl.auth()
        assert gl.user is not None
        return CheckResult(name="gitlab", ok=True, detail=f"authenticated as {gl.user.username}")
    except gitlab.GitlabAuthenticationError:
        return CheckResult(name="gitlab", ok=False, detail="token rejected (401)")
    except Exception as exc:  # unreachable, TLS, DNS ...: report the kind, not the message
        return CheckResult(name="gitlab", ok=False, detail=f"unreachable ({type(exc).__name__})")


class DiagnoseActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @activity.defn(name="diagnose_worker")
    def diagnose_worker(self) -> DiagnoseResult:
        return _diagnose(self.settings)


def _diagnose(settings: Settings) -> DiagnoseResult:
    env = {"XDG_CACHE_HOME": str(settings.copilot_cache_path), "PATH": "/usr/bin:/bin"}
    try:
        copilot_out = subprocess.run(
            [settings.copilot_executable, "--version"], capture_output=True, text=True, timeout=60, env=env
        )
        copilot = CheckResult(
            name="copilot-cli", ok=copilot_out.returncode == 0, detail=copilot_out.stdout.strip()[:100]
        )
    except (OSError, subprocess.SubprocessError) as exc:
        copilot = CheckResult(name="copilot-cli", ok=False, detail=type(exc).__name__)
    return DiagnoseResult(
        version=VERSION,
        task_executor=settings.task_executor.value,
        checks=[_command("git", ["git", "--version"]), copilot, _gitlab(settings)],
    )
