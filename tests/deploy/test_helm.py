"""The chart through the real helm v3 and v4: `helm lint --strict`, `helm template`, the docs' exact
`helm install` commands, the schema's refusals, long release names, and payload encryption.

`kubectl apply --dry-run=server` needs a Kubernetes API server; it runs when one is reachable
(KUBECONFIG or ~/.kube/config) and is skipped with that reason otherwise.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from contracts.codec import codec_from_settings
from contracts.settings import Settings

from .conftest import CHART_DIR, REPO_ROOT, VALUES_FILES

KUBE_VERSION = "1.32.0"
LONG_RELEASE = "copilot-agent-for-the-platform-engineering-group-prod"  # 53, helm's maximum
RELEASES = ["agent", LONG_RELEASE]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# An encryption key as the docs describe it: KEY_ID:base64 of 32 bytes.
TEST_KEY = "k1:" + base64.b64encode(bytes(range(32))).decode()


def run_helm(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "KUBECONFIG": os.devnull}
    result = subprocess.run(
        [helm, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env
    )
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


def values_args(variant: str) -> list[str]:
    path = VALUES_FILES[variant]
    return ["-f", str(path)] if path else []


def manifests_of(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def template(helm: str, release: str, *args: str) -> list[dict]:
    return manifests_of(run_helm(helm, "template", release, str(CHART_DIR), "-n", "agents", *args).stdout)


def by(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


@pytest.mark.parametrize("variant", sorted(VALUES_FILES))
def test_helm_lint_strict_passes(helm, variant):
    result = run_helm(helm, "lint", "--strict", str(CHART_DIR), *values_args(variant))
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def _labels(manifest: dict) -> list[dict]:
    found = [manifest["metadata"].get("labels") or {}]
    spec = manifest.get("spec") or {}
    found.append((spec.get("selector") or {}).get("matchLabels") or {})
    found.append(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
    return found


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("variant", sorted(VALUES_FILES))
def test_every_rendered_object_is_one_the_api_server_accepts(helm, variant, release):
    """Valid names (Services are RFC 1035 labels, Jobs RFC 1123 labels of at most 63, as their
    pods carry the name as a label), valid label values, and valid against the Kubernetes schemas."""
    manifests = template(helm, release, *values_args(variant))
    assert manifests
    for manifest in manifests:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        assert len(name) <= 253 and DNS_SUBDOMAIN.match(name), (kind, name)
        if kind == "Service":
            assert len(name) <= 63 and DNS_1035.match(name), (kind, name)
        if kind in {"Job", "Deployment"}:
            assert len(name) <= 63 and DNS_LABEL.match(name), (kind, name)
        for labels in _labels(manifest):
            for key, value in labels.items():
                assert len(str(value)) <= 63 and LABEL_VALUE.match(str(value)), (kind, name, key, value)
        if release == LONG_RELEASE:  # the short name is validated in test_chart.py already
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_long_release_names_are_shortened_with_a_hash_and_never_collide(helm):
    other = LONG_RELEASE[:-4] + "test"
    names = [{m["metadata"]["name"] for m in by(template(helm, r), "Service")} for r in (LONG_RELEASE, other)]
    assert names[0].isdisjoint(names[1])
    (dev,) = [n for n in names[0] if n.endswith("-temporal-dev")]
    assert dev.startswith(LONG_RELEASE[:30]) and len(dev) <= 63


def test_the_default_install_needs_no_dependency_and_runs_a_dev_temporal(helm):
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert "dependencies" not in chart and not (CHART_DIR / "charts").exists()
    manifests = template(helm, "agent")
    (config,) = by(manifests, "ConfigMap")
    services = {m["metadata"]["name"] for m in by(manifests, "Service")}
    assert config["data"]["TEMPORAL_ADDRESS"] == "agent-gitlab-copilot-agent-temporal-dev:7233"
    assert "agent-gitlab-copilot-agent-temporal-dev" in services


def test_production_values_use_the_given_temporal_and_no_dev_server(helm):
    manifests = template(helm, "agent", *values_args("production"))
    (config,) = by(manifests, "ConfigMap")
    assert config["data"]["TEMPORAL_ADDRESS"] == "acme-prod.a1b2c.tmprl.cloud:7233"
    assert not [m for m in manifests if "temporal-dev" in m["metadata"]["name"]]


def _documented_helm_installs() -> list[list[str]]:
    """Every `helm install` of this chart in the docs' bash blocks, continuation lines joined."""
    commands = []
    for doc in (REPO_ROOT / "docs" / "deployment.md", REPO_ROOT / "README.md"):
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                argv = shlex.split(line, comments=True)
                if argv[:2] == ["helm", "install"] and "helm/gitlab-copilot-agent" in argv:
                    commands.append(argv)
    return commands


def test_the_docs_install_the_default_and_the_production_way():
    commands = _documented_helm_installs()
    assert len(commands) >= 2
    assert any("values-production.yaml" in " ".join(c) for c in commands)
    assert any("-f" not in c for c in commands)  # the default install, no values file


@pytest.mark.parametrize("command", _documented_helm_installs(), ids=lambda argv: " ".join(argv[2:6]))
def test_the_documented_install_commands_succeed(helm, command):
    """Exactly the docs' command: helm v4 runs it with --dry-run=client (no cluster here); helm v3 needs
    a cluster for that, so it renders the same arguments with `helm template`."""
    args = command[1:]
    if "v3." in run_helm(helm, "version", "--short").stdout:
        result = run_helm(helm, "template", *args[1:])
    else:
        result = run_helm(helm, *args, "--dry-run=client")
    assert "kind: Deployment" in result.stdout


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ("secrets.existingSecret=Bad_Name", "secrets.existingSecret"),
        ("fullnameOverride=Copilot_Agent", "fullnameOverride"),
        ("nameOverride=agent_1", "nameOverride"),
        ("temporal.server.replicaCount=zero", "server"),
        ("temporal.tls.existingSecret=Not Valid", "temporal.tls.existingSecret"),
        ("payloadEncryption.keys=no-colon", "payloadEncryption.keys"),
        ("codecServer.corsOrigins={temporal-ui}", "codecServer.corsOrigins.0"),
        ("temporal.enabled=true", "no longer a subchart"),
        ("codecServer.enabled=true", "codecServer.enabled needs codecServer.token"),
        ("temporalDev.enabled=false", "temporal.address is required"),
        ("gitlab.extraTokens[0].alias=team-b", "gitlab.extraTokens.0.alias"),
        ("gitlab.extraTokens[0].secretKey=a b", "gitlab.extraTokens.0"),
    ],
)
def test_bad_values_are_refused_with_the_path(helm, setting, where):
    result = run_helm(helm, "template", "agent", str(CHART_DIR), "--set", setting, check=False)
    # helm v3 prints schema paths as `a.b.0`, v4 as `/a/b/0`
    assert result.returncode != 0 and where in result.stderr.replace("/", "."), result.stderr
    if "=" in setting and "enabled" not in setting:
        assert "schema" in result.stderr, result.stderr


def _container(manifests: list[dict], deployment_suffix: str) -> dict:
    (deployment,) = [
        m for m in by(manifests, "Deployment") if m["metadata"]["name"].endswith(deployment_suffix)
    ]
    return deployment["spec"]["template"]["spec"]["containers"][0]


def _secret_env(container: dict) -> set[str]:
    return {env["name"] for env in container.get("env", []) if "valueFrom" in env}


def test_payload_encryption_and_the_codec_server_turn_on_from_the_chart(helm, monkeypatch):
    manifests = template(
        helm,
        "agent",
        "--set", f"payloadEncryption.keys={TEST_KEY}",
        "--set", "payloadEncryption.keyId=k1",
        "--set", "codecServer.enabled=true",
        "--set", "codecServer.token=ui-token",
        "--set", "codecServer.corsOrigins={https://temporal-ui.example.com}",
    )  # fmt: skip
    (secret,) = by(manifests, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"PAYLOAD_ENCRYPTION_KEYS": TEST_KEY, "CODEC_SERVER_TOKEN": "ui-token"}
    assert {"PAYLOAD_ENCRYPTION_KEYS", "CODEC_SERVER_TOKEN"} <= _secret_env(_container(manifests, "-api"))
    worker = _secret_env(_container(manifests, "-worker"))
    assert "PAYLOAD_ENCRYPTION_KEYS" in worker and "CODEC_SERVER_TOKEN" not in worker
    (config,) = by(manifests, "ConfigMap")
    for key in Settings.model_fields:
        monkeypatch.delenv(key.upper(), raising=False)
    for key, value in {**config["data"], **decoded}.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.codec_cors_origins == ["https://temporal-ui.example.com"]
    codec = codec_from_settings(settings)
    assert codec is not None and codec.active == "k1"


def _env_ref(container: dict, name: str) -> tuple[str, str] | None:
    for env in container.get("env", []):
        if env["name"] == name:
            ref = env["valueFrom"]["secretKeyRef"]
            assert "optional" not in ref or ref["optional"] is False  # a missing key stops the pod
            return ref["name"], ref["key"]
    return None


def test_extra_gitlab_credentials_come_from_secret_keys_never_the_config_map(helm, monkeypatch):
    manifests = template(
        helm,
        "agent",
        "--set", "gitlab.token=glpat-default-0001",
        "--set", "gitlab.extraTokens[0].alias=team_b",
        "--set", "gitlab.extraTokens[0].token=glpat-team-b-0002",
        "--set", "gitlab.extraTokens[1].alias=Ops",
        "--set", "gitlab.extraTokens[1].secretName=ops-gitlab",
        "--set", "gitlab.extraTokens[1].secretKey=token",
    )  # fmt: skip
    (secret,) = by(manifests, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"GITLAB_TOKEN": "glpat-default-0001", "GITLAB_TOKEN__TEAM_B": "glpat-team-b-0002"}
    release_secret = secret["metadata"]["name"]
    for suffix in ("-api", "-worker"):  # the API checks identities, the worker acts: both need them
        container = _container(manifests, suffix)
        assert _env_ref(container, "GITLAB_TOKEN__TEAM_B") == (release_secret, "GITLAB_TOKEN__TEAM_B")
        assert _env_ref(container, "GITLAB_TOKEN__OPS") == ("ops-gitlab", "token")
    (config,) = by(manifests, "ConfigMap")
    assert "glpat-team-b" not in yaml.safe_dump(config) and not any(
        k.startswith("GITLAB_TOKEN") for k in config["data"]
    )
    # What the pods get is what the settings read: two extra credentials beside the default.
    for key in Settings.model_fields:
        monkeypatch.delenv(key.upper(), raising=False)
    for key, value in {**config["data"], **decoded, "GITLAB_TOKEN__OPS": "glpat-ops-0003"}.items():
        monkeypatch.setenv(key, value)
    assert Settings(_env_file=None).credential_aliases() == ["default", "ops", "team_b"]

    # With an existing Secret the keys are read from it; nothing is written.
    manifests = template(
        helm,
        "agent",
        "--set",
        "secrets.existingSecret=gitlab-creds",
        "--set",
        "gitlab.extraTokens[0].alias=team_b",
    )
    assert not by(manifests, "Secret")
    assert _env_ref(_container(manifests, "-worker"), "GITLAB_TOKEN__TEAM_B") == (
        "gitlab-creds",
        "GITLAB_TOKEN__TEAM_B",
    )


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (["gitlab.extraTokens[0].alias=team_b", "gitlab.extraTokens[1].alias=TEAM_B"], "listed twice"),
        (["gitlab.extraTokens[0].alias=Default"], "alias default is GITLAB_TOKEN; set gitlab.token"),
        (
            [
                "secrets.existingSecret=creds",
                "gitlab.extraTokens[0].alias=team_b",
                "gitlab.extraTokens[0].token=x",
            ],
            "put the token in that Secret",
        ),
    ],
)
def test_contradictory_extra_tokens_are_refused(helm, settings, says):
    args = [arg for setting in settings for arg in ("--set", setting)]
    result = run_helm(helm, "template", "agent", str(CHART_DIR), *args, check=False)
    assert result.returncode != 0 and says in result.stderr, result.stderr


def test_payload_encryption_is_off_by_default(helm):
    manifests = template(helm, "agent")
    (config,) = by(manifests, "ConfigMap")
    assert config["data"]["PAYLOAD_ENCRYPTION_KEY_ID"] == "" and config["data"]["CODEC_CORS_ORIGINS"] == ""
    assert "CODEC_SERVER_TOKEN" not in _secret_env(_container(manifests, "-api"))


def test_temporal_values_for_the_official_chart_meet_restricted(helm):
    values = yaml.safe_load((REPO_ROOT / "helm" / "temporal-values.yaml").read_text())
    assert values["server"]["securityContext"]["runAsNonRoot"] is True
    for component in ("frontend", "history", "matching", "worker"):
        context = values["server"][component]["containerSecurityContext"]
        assert context == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert values["schema"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "helm test" in (REPO_ROOT / "helm" / "temporal-values.yaml").read_text()


def _api_server_reason(kubectl: Path) -> str | None:
    """None when a Kubernetes API server answers, else why the server-side check cannot run."""
    config = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if not any(Path(p).is_file() for p in config.split(os.pathsep) if p):
        return f"no Kubernetes API server configured (no kubeconfig at {config})"
    probe = subprocess.run(
        [str(kubectl), "version", "--request-timeout=5s"], capture_output=True, text=True, timeout=30
    )
    return (
        None if probe.returncode == 0 else f"no Kubernetes API server reachable: {probe.stderr.strip()[:200]}"
    )


@pytest.mark.parametrize("variant", sorted(VALUES_FILES))
def test_server_side_dry_run_accepts_the_manifests(helm, variant, tmp_path):
    kubectl = Path(helm).parent / "kubectl"
    reason = _api_server_reason(kubectl)
    if reason:
        pytest.skip(f"kubectl apply --dry-run=server skipped: {reason}")
    rendered = tmp_path / "manifests.yaml"
    rendered.write_text(run_helm(helm, "template", "agent", str(CHART_DIR), *values_args(variant)).stdout)
    result = subprocess.run(
        [str(kubectl), "apply", "--dry-run=server", "-f", str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
