"""`make k3d-deploy` with the seed guide's `.env.k3d`: every key reaches the pods, secrets only as
Secret references. The real kubectl builds the Secret and the ConfigMap (client-side dry run, as the
target does before applying them) and the real helm renders the release the way the target installs it.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from contracts.settings import Settings

from .conftest import REPO_ROOT
from .test_helm import by, template

# The guide's "Example .env.k3d", exactly, and one with a BYOK provider filled in.
SEED_ENV_K3D = """\
GITLAB_URL=https://gitlab.example.com
GITLAB_TOKEN=glpat-xxxxx
GITLAB_WEBHOOK_SECRET=my-secret
GITHUB_TOKEN=ghp_xxxxx
COPILOT_PROVIDER_TYPE=
COPILOT_PROVIDER_BASE_URL=
COPILOT_PROVIDER_API_KEY=
"""
WITH_PROVIDER = (
    SEED_ENV_K3D.replace("COPILOT_PROVIDER_TYPE=", "COPILOT_PROVIDER_TYPE=openai")
    .replace("COPILOT_PROVIDER_BASE_URL=", "COPILOT_PROVIDER_BASE_URL=https://models.example.com/v1")
    .replace("COPILOT_PROVIDER_API_KEY=", "COPILOT_PROVIDER_API_KEY=sk-xxxxx")
)


def _k3d_env():
    spec = importlib.util.spec_from_file_location("k3d_env", REPO_ROOT / "helm" / "tools" / "k3d_env.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kubectl_object(kubectl: Path, *args: str) -> dict:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "KUBECONFIG": os.devnull}
    result = subprocess.run(
        [str(kubectl), "create", *args, "--dry-run=client", "-o", "yaml"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _container_environment(container: dict, config_maps: dict[str, dict], secret: dict) -> dict[str, str]:
    """What the kubelet gives the container: envFrom in order (later wins), then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]].get("data") or {})
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif (ref := entry["valueFrom"].get("secretKeyRef")) and ref["key"] in (secret.get("data") or {}):
            env[entry["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return env


@pytest.mark.parametrize("env_text", [SEED_ENV_K3D, WITH_PROVIDER], ids=["guide-example", "with-provider"])
def test_the_seed_env_k3d_reaches_the_pods(helm, tmp_path, monkeypatch, env_text):
    env_file = tmp_path / ".env.k3d"
    env_file.write_text(env_text)
    out = tmp_path / "k3d"
    assert _k3d_env().main([str(env_file), str(out)]) == 0
    kubectl = Path(helm).parent / "kubectl"
    secret = _kubectl_object(
        kubectl, "secret", "generic", "copilot-agent-secrets", f"--from-env-file={out / 'secrets.env'}"
    )
    extra = _kubectl_object(
        kubectl, "configmap", "copilot-agent-k3d-env", f"--from-env-file={out / 'config.env'}"
    )
    manifests = template(
        helm, "copilot-agent", "-f", str(REPO_ROOT / "helm" / "gitlab-copilot-agent" / "values-local.yaml"),
        "--set", "secrets.existingSecret=copilot-agent-secrets",
        "--set", "extraEnvFrom[0].configMapRef.name=copilot-agent-k3d-env",
    )  # fmt: skip
    assert not by(manifests, "Secret"), "the chart makes no Secret of its own with existingSecret"
    (chart_config,) = by(manifests, "ConfigMap")
    config_maps = {chart_config["metadata"]["name"]: chart_config, "copilot-agent-k3d-env": extra}
    secret_names = {n.upper() for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)}
    assert set(extra.get("data") or {}).isdisjoint(secret_names), "no secret in the ConfigMap"
    (worker,) = [d for d in by(manifests, "Deployment") if d["metadata"]["name"].endswith("-worker")]
    env = _container_environment(worker["spec"]["template"]["spec"]["containers"][0], config_maps, secret)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.gitlab_url == "https://gitlab.example.com"
    assert settings.gitlab_token == SecretStr("glpat-xxxxx") and settings.github_token == SecretStr(
        "ghp_xxxxx"
    )
    if env_text is WITH_PROVIDER:
        assert settings.copilot_provider_type == "openai"
        assert settings.copilot_provider_base_url == "https://models.example.com/v1"
        assert settings.copilot_provider_api_key == SecretStr("sk-xxxxx")
    else:  # the guide's empty values leave the chart's defaults
        assert settings.copilot_provider_type == "" and env["COPILOT_MODEL"] == "gpt-4.1"


def test_a_missing_or_multi_line_env_file_is_refused(tmp_path, capsys):
    k3d_env = _k3d_env()
    assert k3d_env.main([str(tmp_path / "absent"), str(tmp_path / "out")]) == 2
    assert "is missing" in capsys.readouterr().err
    bad = tmp_path / ".env.k3d"
    bad.write_text('GITLAB_TOKEN="line one\nline two"\n')
    assert k3d_env.main([str(bad), str(tmp_path / "out")]) == 2
    assert "spans several lines" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing written for a refused file"


def test_k3d_deploy_creates_both_objects_and_hands_the_config_map_to_the_chart():
    """The target's commands (make -n prints them without running anything)."""
    result = subprocess.run(
        ["make", "-n", "k3d-deploy", "VENV=/nonexistent-venv-so-no-install-rule-runs"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    commands = result.stdout
    assert "helm/tools/k3d_env.py .env.k3d .data/k3d" in commands, commands + result.stderr
    assert "create secret generic copilot-agent-secrets --from-env-file=.data/k3d/secrets.env" in commands
    assert "create configmap copilot-agent-k3d-env --from-env-file=.data/k3d/config.env" in commands
    assert "extraEnvFrom[0].configMapRef.name=copilot-agent-k3d-env" in commands
