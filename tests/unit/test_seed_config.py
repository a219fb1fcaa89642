"""The seed's configuration forms: project map (JSON, YAML, helper CLI), several credentials,
per-project resolution, review once per MR, and the start-up warning about seed variables."""

import json
import logging
import os

import pytest
from pydantic import ValidationError

from contracts.ids import review_id
from contracts.project_map import main as map_cli
from contracts.project_map import parse_project_map
from contracts.seed_settings import RETIRED, seed_variables, seed_warning
from contracts.settings import ResolutionBehavior, Settings

SEED_JSON = {
    "mappings": {
        "PROJ": {
            "repo": "group/app",
            "target_branch": "main",
            "credential_ref": "default",
            "plugins": [],
            "trigger_status": "AI Ready",
            "in_progress_status": "In Progress",
            "in_review_status": "In Review",
            "resolution_behavior": "suggest",
        },
        "OPS": {
            "repo": "platform/tools",
            "target_branch": "develop",
            "credential_ref": "Platform_Team",
            "plugins": ["github/awesome-copilot"],
            "trigger_status": "Ready for AI",
            "in_progress_status": "Doing",
            "in_review_status": "Review",
            "resolution_behavior": "auto-resolve",
        },
    }
}

SEED_YAML = """
defaults:
  target_branch: main
  credential_ref: default
  plugins: [org/house-rules]
bindings:
  - jira_project: PROJ
    repo: group/app
  - jira_project: OPS
    repo: platform/tools
    target_branch: develop
    credential_ref: platform_team
    plugins: []
    resolution_behavior: "off"
projects:
  - repo: "platform/*"
    credential_ref: platform_team
"""


def settings(**values):
    # the seed maps name plugins: they are looked for under COPILOT_PLUGIN_ROOT when a run starts
    return Settings(_env_file=None, **{"copilot_plugin_root": "/opt/copilot-plugins", **values})


def test_the_seeds_rendered_json_keeps_every_field():
    project_map = parse_project_map(json.dumps(SEED_JSON))
    ops = project_map["OPS"]
    assert (ops.repo, ops.target_branch, ops.credential_ref) == ("platform/tools", "develop", "platform_team")
    assert ops.plugins == ["github/awesome-copilot"] and ops.resolution_behavior == "auto-resolve"
    assert (ops.trigger_status, ops.in_progress_status, ops.in_review_status) == (
        "Ready for AI",
        "Doing",
        "Review",
    )
    assert sorted(project_map) == ["OPS", "PROJ"]  # reads like the dict it replaced


def test_the_seeds_yaml_applies_defaults_and_overrides():
    project_map = parse_project_map(SEED_YAML)
    assert project_map["PROJ"].plugins == ["org/house-rules"]  # from defaults
    assert project_map["OPS"].plugins == []  # an explicit override, even an empty one
    assert project_map["OPS"].resolution_behavior == "off"
    assert project_map.for_project("platform/other").credential_ref == "platform_team"  # by pattern
    assert project_map.for_project("group/app").credential_ref == "default"
    assert project_map.for_project("elsewhere/x").credential_ref == "default"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "bindings:\n  - {jira_project: A, repo: g/a}\n  - {jira_project: A, repo: g/b}\n",
            "duplicate Jira project keys",
        ),
        ('{"mappings": {"A": {"repo": "g/a", "credentail_ref": "x"}}}', "credentail_ref"),
        ('{"A": {"repo": "no-slash"}}', "group/project"),
        ('{"mappings": {}, "extra": 1}', "unknown top-level keys"),
        ("{not json: [", "not valid YAML"),
    ],
)
def test_bad_maps_are_refused_with_the_reason(text, says):
    with pytest.raises(ValueError, match=says):
        parse_project_map(text)


def test_settings_accept_every_form_and_refuse_unknown_credentials():
    for text in (json.dumps(SEED_JSON), SEED_YAML, json.dumps(SEED_JSON["mappings"])):
        parsed = settings(gitlab_token="t", gitlab_tokens={"PLATFORM_TEAM": "p"}, jira_project_map=text)
        assert parsed.project_map()["OPS"].credential_ref == "platform_team"
    with pytest.raises(ValidationError, match=r"unknown credential\(s\) \['platform_team'\]"):
        settings(gitlab_token="t", jira_project_map=SEED_YAML)


def test_credentials_come_from_the_environment_and_dotenv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GITLAB_TOKEN=glpat-default\nGITLAB_TOKEN__FROM_FILE=glpat-file\n")
    monkeypatch.setenv("GITLAB_TOKEN__TEAM_B", "glpat-team-b")
    parsed = Settings()
    assert parsed.credential_aliases() == ["default", "from_file", "team_b"]
    assert parsed.gitlab_token_of("team_b").get_secret_value() == "glpat-team-b"
    assert {"glpat-default", "glpat-file", "glpat-team-b"} <= set(parsed.secret_values())  # redacted in logs
    assert "glpat-team-b" not in repr(parsed)


def test_resolution_is_per_project_with_the_seeds_default():
    parsed = settings(gitlab_token="t", gitlab_tokens={"platform_team": "p"}, jira_project_map=SEED_YAML)
    assert parsed.resolution_behavior is ResolutionBehavior.SUGGEST
    assert parsed.resolution_for("platform/tools") is ResolutionBehavior.OFF
    assert parsed.resolution_for("group/app") is ResolutionBehavior.SUGGEST


def test_the_map_file_is_read_again_when_it_changes(tmp_path, caplog):
    path = tmp_path / "mappings.yaml"
    path.write_text("bindings:\n  - {jira_project: A, repo: g/a}\n")
    parsed = settings(jira_project_map_file=str(path))
    assert list(parsed.project_map()) == ["A"]
    path.write_text("bindings:\n  - {jira_project: A, repo: g/a}\n  - {jira_project: B, repo: g/b}\n")
    os.utime(path, ns=(1, 1))  # a different mtime even within the filesystem's resolution
    assert sorted(parsed.project_map()) == ["A", "B"]
    path.write_text("bindings: [ {jira_project: C")  # a broken edit keeps the last good map
    os.utime(path, ns=(2, 2))
    with caplog.at_level(logging.ERROR):
        assert sorted(parsed.project_map()) == ["A", "B"]
        assert sorted(parsed.project_map()) == ["A", "B"]
    assert len([r for r in caplog.records if "keeping the last good map" in r.getMessage()]) == 1
    with pytest.raises(ValidationError, match="JIRA_PROJECT_MAP_FILE"):
        settings(jira_project_map_file=str(tmp_path / "missing.yaml"))


def test_the_helper_cli_validates_shows_renders_and_prints_the_schema(tmp_path, capsys):
    path = tmp_path / "mappings.yaml"
    path.write_text(SEED_YAML)
    assert map_cli(["validate", str(path)]) == 0
    validated = capsys.readouterr().out
    assert "credential refs required: default, platform_team" in validated
    assert "plugins required (under COPILOT_PLUGIN_ROOT): org/house-rules" in validated
    assert map_cli(["show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "platform/tools" in shown and "develop" in shown and "off" in shown
    assert map_cli(["render-json", str(path)]) == 0
    rendered = json.loads(capsys.readouterr().out)
    assert set(rendered) == {"mappings", "projects"}
    assert parse_project_map(json.dumps(rendered)) == parse_project_map(SEED_YAML)  # round trip
    assert map_cli(["schema"]) == 0
    assert "bindings" in json.loads(capsys.readouterr().out)["properties"]
    path.write_text("bindings: []\n")
    assert map_cli(["validate", str(path)]) == 1
    assert "INVALID" in capsys.readouterr().err


def test_review_once_per_mr_has_one_id_for_every_push():
    assert review_id(7, 3, "a" * 40) != review_id(7, 3, "b" * 40)
    assert review_id(7, 3, "a" * 40, once=True) == review_id(7, 3, "b" * 40, once=True) == "review:7:3:once"


def test_one_warning_names_every_seed_variable_set():
    environ = {name: "x" for name in RETIRED} | {"ENVIRONMENT": "development", "GITLAB_URL": "https://g"}
    text = seed_warning(environ)
    assert text is not None and text.count("\n") == len(RETIRED) + 1  # one line each, plus ENVIRONMENT
    for name in [*RETIRED, "ENVIRONMENT"]:
        assert f"  {name}: " in text
    assert "GITLAB_URL" not in text
    assert "STATE_BACKEND: Temporal is the state" in text
    assert "DISPATCH_BACKEND: replaced by the Kubernetes Job executor" in text
    assert "PROMPT_STRATEGY: one strategy only" in text
    assert seed_warning({"ENVIRONMENT": "production", "GITLAB_TOKEN__TEAM_B": "x"}) is None
    assert seed_variables({"ENVIRONMENT": "development", "ENABLE_DOCS": "true"}) == {}


def test_a_variable_this_service_reads_is_never_reported(monkeypatch):
    # Other work brings seed variables back as settings: from then on they are read, not reported.
    monkeypatch.setitem(RETIRED, "GITLAB_URL", "pretend it went")
    assert seed_variables({"GITLAB_URL": "https://g", "REDIS_URL": "redis://r"}) == {
        "REDIS_URL": RETIRED["REDIS_URL"]
    }


def test_the_api_warns_at_start(monkeypatch, caplog, base_settings_for_warning):
    from api.app import create_app

    monkeypatch.setenv("STATE_BACKEND", "redis")
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379")
    with caplog.at_level(logging.WARNING, logger="contracts.seed_settings"):
        create_app(base_settings_for_warning, temporal_client=object())
    warnings = [r.getMessage() for r in caplog.records if r.name == "contracts.seed_settings"]
    assert len(warnings) == 1 and "STATE_BACKEND" in warnings[0] and "REDIS_URL" in warnings[0]


@pytest.fixture
def base_settings_for_warning():
    return settings(gitlab_webhook_secret="s")


def test_a_job_lease_names_its_credential_and_cannot_be_rewritten():
    import base64

    from executors.job_keys import JobKeys

    keys = JobKeys(b"k" * 32)
    lease = keys.lease("job-1", "git", expires=2**40, repo="https://g/team-b/svc.git", credential="team_b")
    assert keys.verify(lease, "git").credential == "team_b"
    prefix, claims, mac = lease.split(".")
    data = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**data, "cred": "default"}).encode()).decode().rstrip("=")
    assert keys.verify(f"{prefix}.{forged}.{mac}", "git") is None  # the alias is signed with the rest
    old = keys.lease("job-2", "git", expires=2**40, repo="https://g/a.git")
    assert keys.verify(old, "git").credential == "default"
