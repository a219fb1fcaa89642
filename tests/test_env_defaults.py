"""A copied `.env.example` changes nothing: empty values mean "the default", and Diagnose names the
cause when the Copilot CLI or a directory it needs is unusable.

Compose passes every `NAME=` line of `.env` into the container, where it replaces the image's ENV; so
empty values must resolve to defaults that are right in the image too (the platform's bundled CLI,
$XDG_CACHE_HOME for the cache). The Diagnose checks run the real Copilot CLI and real directories.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from activities.diagnose import _diagnose
from contracts.settings import REPO_ROOT, Settings, bundled_copilot

EXAMPLE = REPO_ROOT / ".env.example"


def _example_names() -> list[str]:
    lines = EXAMPLE.read_text().splitlines()
    return [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]


def test_a_copied_env_example_means_the_defaults(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    shutil.copy(EXAMPLE, env_file)
    assert Settings(_env_file=env_file).model_dump() == Settings(_env_file=None).model_dump()


def test_empty_values_in_the_environment_mean_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """What compose does with a copied `.env.example`: every line becomes an environment variable."""
    for name in _example_names():
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("XDG_CACHE_HOME", "/opt/copilot-cache")  # the image's ENV
    settings = Settings(_env_file=None)
    assert settings.gitlab_token is None  # `GITLAB_TOKEN=` is unset, not an empty token
    assert settings.gitlab_url == "https://gitlab.com"
    assert settings.copilot_executable == str(bundled_copilot())
    assert settings.copilot_cache_path == Path("/opt/copilot-cache")
    assert settings.review_exclude == Settings.model_fields["review_exclude"].default_factory()


def test_the_cache_defaults_to_xdg_cache_home_then_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPILOT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert Settings(_env_file=None).copilot_cache_path == REPO_ROOT / ".data" / "copilot-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/x")
    assert Settings(_env_file=None).copilot_cache_path == Path("/var/cache/x")
    assert Settings(_env_file=None, copilot_cache_dir="/c").copilot_cache_path == Path("/c")


@pytest.mark.parametrize(
    ("machine", "installed", "expected"),
    [
        ("x86_64", ["copilot-linux-x64"], "copilot-linux-x64"),
        ("aarch64", ["copilot-linux-arm64"], "copilot-linux-arm64"),
        ("arm64", ["copilot-linux-arm64"], "copilot-linux-arm64"),
        ("aarch64", ["copilot-linuxmusl-arm64"], "copilot-linuxmusl-arm64"),
        ("aarch64", [], "copilot-linux-arm64"),  # nothing installed: the path a "not found" names
    ],
)
def test_the_bundled_cli_is_the_one_npm_installed_for_this_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: str, installed: list[str], expected: str
) -> None:
    for name in installed:
        exe = tmp_path / "node_modules" / "@github" / name / "copilot"
        exe.parent.mkdir(parents=True)
        exe.write_text("")
    monkeypatch.setattr("platform.machine", lambda: machine)
    monkeypatch.setattr("sys.platform", "linux")
    assert bundled_copilot(tmp_path) == tmp_path / "node_modules" / "@github" / expected / "copilot"


@pytest.fixture
def base_settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, work_dir=str(tmp_path / "work"))


def _checks(settings: Settings) -> dict:
    return {check.name: check for check in _diagnose(settings).checks}


def test_diagnose_passes_with_the_real_cli_and_names_the_dirs(base_settings: Settings, tmp_path) -> None:
    checks = _checks(base_settings.model_copy(update={"work_dir": str(tmp_path / "work")}))
    assert checks["copilot-cli"].ok, checks["copilot-cli"].detail
    assert checks["copilot-cache"].ok and checks["work-dir"].ok
    assert checks["work-dir"].detail == str(tmp_path / "work")
    assert checks["agent-sandbox"].ok and checks["agent-sandbox"].detail.startswith("bubblewrap")
    assert not checks["gitlab"].ok and checks["gitlab"].detail == "GITLAB_TOKEN not set"


def test_diagnose_names_the_cache_dir_the_cli_could_not_create(base_settings: Settings, tmp_path) -> None:
    """The issue's case: the CLI cannot unpack itself (read-only root there, a file in the way here:
    both are a failed mkdir, and root may write anywhere else)."""
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    cache = blocker / "copilot-cache"
    checks = _checks(base_settings.model_copy(update={"copilot_cache_dir": str(cache)}))
    assert not checks["copilot-cache"].ok
    assert checks["copilot-cache"].detail == f"cannot create {cache} (Not a directory); set COPILOT_CACHE_DIR"
    cli = checks["copilot-cli"]
    assert not cli.ok
    assert "--version exited 1" in cli.detail and f"XDG_CACHE_HOME={cache}" in cli.detail
    assert "ENOTDIR" in cli.detail and "mkdir" in cli.detail and str(cache) in cli.detail


def test_diagnose_names_a_missing_cli_and_an_unusable_work_dir(base_settings: Settings, tmp_path) -> None:
    (tmp_path / "file").write_text("")
    missing = tmp_path / "nowhere" / "copilot"
    checks = _checks(
        base_settings.model_copy(
            update={"copilot_cli_path": str(missing), "work_dir": str(tmp_path / "file" / "work")}
        )
    )
    assert checks["copilot-cli"].detail == f"not found: {missing}; set COPILOT_CLI_PATH"
    assert checks["work-dir"].detail.startswith(
        f"cannot create {tmp_path / 'file' / 'work'} (Not a directory)"
    )


def test_diagnose_reports_the_exit_code_and_stderr_of_a_failing_cli(
    base_settings: Settings, tmp_path
) -> None:
    cli = tmp_path / "copilot"
    cli.write_text("#!/bin/sh\necho 'boom: no model configured' >&2\necho 'at line 2' >&2\nexit 3\n")
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    detail = _checks(base_settings.model_copy(update={"copilot_cli_path": str(cli)}))["copilot-cli"].detail
    assert detail.startswith(f"{cli} --version exited 3 ") and detail.endswith(": boom: no model configured")


def test_diagnose_names_the_fix_when_bubblewrap_is_missing(base_settings: Settings, monkeypatch) -> None:
    from executors import process_sandbox

    monkeypatch.setattr(process_sandbox, "bwrap_path", lambda: None)
    check = _checks(base_settings)["agent-sandbox"]
    assert not check.ok and "apt-get install -y bubblewrap" in check.detail
