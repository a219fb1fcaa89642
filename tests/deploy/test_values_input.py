"""Bad values are refused with a clear message, by the schema and by helm/tools/render.py."""

from __future__ import annotations

import pytest

from .conftest import CHART_DIR

BAD_VALUES = [
    ({"api": {"replicaCount": "many"}}, "/api/replicaCount"),
    ({"taskExecutor": "docker"}, "/taskExecutor"),
    ({"review": {"resolutionBehavior": "maybe"}}, "/review/resolutionBehavior"),
    ({"worker": {"replicas": 3}}, "replicas"),
    ({"temporal": {"address": "http://temporal:7233"}}, "/temporal/address"),
    ({"networkPolicy": {"agentJob": {"dnsPodLabels": {"k8s-app": 5}}}}, "dnsPodLabels"),
    ({"jobRunner": {"proxyPort": 80}}, "proxyPort"),
    ({"jira": {"projectMap": {"PROJ": {"target_branch": "main"}}}}, "repo"),
    ({"copilot": {"providerType": "bedrock"}}, "/copilot/providerType"),
    ({"secrets": {"existingSecret": "Bad_Name"}}, "/secrets/existingSecret"),
    ({"fullnameOverride": "Copilot_Agent"}, "/fullnameOverride"),
    ({"temporal": {"server": {"replicaCount": "zero"}}}, "server"),
]


@pytest.mark.parametrize(("values", "where"), BAD_VALUES)
def test_schema_rejects_bad_values(render_tool, values, where):
    with pytest.raises(render_tool.InputError) as excinfo:
        render_tool.render(CHART_DIR, values)
    assert where in str(excinfo.value)
    errors = [m for m in render_tool.lint(CHART_DIR, values) if m.is_error]
    assert errors, "lint must report schema violations as errors"


def test_no_dev_server_and_no_address_fails_clearly(render_tool):
    with pytest.raises(Exception, match="temporal.address is required"):
        render_tool.render(CHART_DIR, {"temporalDev": {"enabled": False}})


def test_values_of_the_old_subchart_fail_with_what_to_do(render_tool):
    with pytest.raises(Exception, match="no longer a subchart"):
        render_tool.render(CHART_DIR, {"temporal": {"enabled": True}})


def test_cli_template_and_lint_succeed(render_tool, capsys):
    assert render_tool.main(["template", str(CHART_DIR), "-f", str(CHART_DIR / "values-local.yaml")]) == 0
    out = capsys.readouterr().out
    assert "# Source: gitlab-copilot-agent/templates/worker-deployment.yaml" in out
    assert render_tool.main(["lint", str(CHART_DIR)]) == 0
    assert "0 error(s)" in capsys.readouterr().out


def test_cli_set_overrides_values_files(render_tool, capsys):
    args = ["template", str(CHART_DIR), "-f", str(CHART_DIR / "values-local.yaml"), "--set", "logLevel=ERROR"]
    assert render_tool.main(args) == 0
    assert "LOG_LEVEL: ERROR" in capsys.readouterr().out


def test_cli_lint_exits_1_on_errors(render_tool, capsys):
    assert render_tool.main(["lint", str(CHART_DIR), "--set", "taskExecutor=docker"]) == 1
    assert "[ERROR]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("api: [unclosed", "not a valid YAML values mapping"),
        ("- just\n- a list\n", "not a valid YAML values mapping"),
        (b"\xff\xfe not utf-8", "not a valid YAML values mapping"),
        ("x: " + "a" * (1024 * 1024), "more than the"),
    ],
)
def test_cli_rejects_bad_values_files(render_tool, tmp_path, capsys, content, message):
    path = tmp_path / "values.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert render_tool.main(["template", str(CHART_DIR), "-f", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_cli_rejects_a_missing_values_file(render_tool, tmp_path, capsys):
    assert render_tool.main(["template", str(CHART_DIR), "-f", str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read values file" in capsys.readouterr().err


def test_cli_rejects_a_bad_release_name(render_tool, capsys):
    assert render_tool.main(["template", str(CHART_DIR), "--name", "Not_Valid!"]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["lint", "template"])
def test_cli_rejects_a_path_that_is_not_a_chart(render_tool, tmp_path, capsys, command):
    assert render_tool.main([command, str(tmp_path)]) == 2
    assert "not a chart directory" in capsys.readouterr().err


def test_cli_rejects_a_set_without_value(render_tool, capsys):
    assert render_tool.main(["template", str(CHART_DIR), "--set", "novalue"]) == 2
    assert "--set 'novalue'" in capsys.readouterr().err
