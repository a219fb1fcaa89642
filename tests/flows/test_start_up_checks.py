"""GITLAB_PROJECTS resolved at worker start (seed parity 3.1.6), against the GitLab stand-in: each entry
looked up once with the credential that serves it, a bad entry named in one warning and in the
Diagnose line, and paths and IDs both matched afterwards."""

from __future__ import annotations

import logging

from activities.diagnose import _diagnose, model_provider_check
from activities.project_allowlist import allowlist_check, resolve_gitlab_projects
from contracts.settings import Settings


def test_entries_are_resolved_once_and_bad_ones_named_in_one_warning(gitlab, users, caplog) -> None:
    app = gitlab.store.project("group/app")
    other = gitlab.create_project("group/other", {"README.md": "x\n"}, members={"copilot-agent": 30})
    settings = Settings(
        _env_file=None,
        gitlab_url=gitlab.url,
        gitlab_token=users.agent_token,
        gitlab_projects=f"group/app,{other.id},nope/missing,99999999",
    )
    # Before resolution an entry matches only its own form.
    assert not settings.serves_project_ref(app.id) and not settings.serves_project_ref("group/other")

    with (
        caplog.at_level(logging.INFO, logger="activities.project_allowlist"),
        caplog.at_level(logging.INFO, logger="audit"),
    ):
        problems = resolve_gitlab_projects(settings)
    # Each entry looked up once, every call in the audit log (`audit.api_call`), never the token.
    lookups = [m for m in caplog.messages if m.startswith("audit.api_call") and "/projects/" in m]
    assert len(lookups) == 4 and all("service=gitlab method=GET" in m for m in lookups), lookups
    assert sum("status=404" in m for m in lookups) == 2
    assert users.agent_token not in caplog.text

    assert [p.split(":")[0] for p in problems] == ["'nope/missing'", "'99999999'"]
    assert all("no such project, or credential 'default' cannot see it (404)" in p for p in problems)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage().startswith("GITLAB_PROJECTS: 2 of 4 entries cannot be served")
    assert "nope/missing" in warning.getMessage() and "99999999" in warning.getMessage()

    # Afterwards both forms match: the path entry by its ID, the ID entry by its path.
    assert settings.serves_project_ref(app.id) and settings.serves_project_ref("group/other")
    assert settings.serves_project(app.id, "renamed/app")  # a rename keeps it served (by ID)
    assert not settings.serves_project_ref("group/third") and not settings.serves_project_ref(12345)
    assert not settings.serves_project(12345, "group/third")

    check = next(c for c in _diagnose(settings).checks if c.name == "gitlab-projects")
    assert not check.ok and "nope/missing" in check.detail and "99999999" in check.detail


def test_an_unreachable_gitlab_leaves_the_list_as_written(caplog) -> None:
    settings = Settings(
        _env_file=None, gitlab_url="http://127.0.0.1:9", gitlab_token="t", gitlab_projects="group/app,42"
    )
    problems = resolve_gitlab_projects(settings)
    assert len(problems) == 2 and all("could not be checked now" in p for p in problems)
    assert settings.serves_project(42, "x/y") and settings.serves_project(7, "group/app")  # as written
    assert not settings.serves_project(7, "x/y")
    assert allowlist_check(Settings(_env_file=None)).ok  # no allowlist: nothing to resolve


async def test_a_worker_without_a_model_provider_says_so_at_start(tmp_path, caplog) -> None:
    """The seed refused to start without GITHUB_TOKEN or a BYOK provider; here the worker starts (it
    also runs reviews' GitLab work) but warns once, and Diagnose has a failing `model-provider` line."""
    from worker import start_up_checks

    bare = Settings(_env_file=None, work_dir=str(tmp_path / "work"))
    with caplog.at_level(logging.WARNING, logger="worker"):
        await start_up_checks(bare)
    assert any(
        "no model provider: set COPILOT_PROVIDER_BASE_URL (BYOK) or GITHUB_TOKEN" in m
        for m in caplog.messages
    )
    assert not model_provider_check(bare).ok
    byok = Settings(
        _env_file=None,
        copilot_provider_base_url="https://models.example.com/v1",
        copilot_provider_type="azure",
    )
    assert model_provider_check(byok).detail == "BYOK azure at models.example.com, without an API key"
    copilot = Settings(_env_file=None, github_token="ghp_x")
    assert model_provider_check(copilot).ok and "GITHUB_TOKEN" in model_provider_check(copilot).detail
