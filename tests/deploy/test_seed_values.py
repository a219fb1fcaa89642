"""The seed chart's values (its deployment guide) through the real helm v3 and v4: what the guide
documents either renders as documented there or fails `helm template` naming the key that replaced
it; and the values every mature chart has (extraEnv, extraEnvFrom, hostAliases, podAnnotations,
nodeSelector, tolerations, affinity) reach every pod of the chart.

The guide's examples are copied here (the guide is not part of this repository).
"""

from __future__ import annotations

import base64
import json

import kubernetes_validate
import pytest
import yaml

from contracts.settings import Settings
from telemetry.resource import otlp_protocol, otlp_url

from .conftest import CHART_DIR
from .test_helm import KUBE_VERSION, by, run_helm, template

# The guide's `helm install`, `helm upgrade` and scaling commands, exactly.
SEED_INSTALL = [
    "--set", "gitlab.url=https://gitlab.example.com",
    "--set", "gitlab.token=glpat-xxxxx",
    "--set", "gitlab.webhookSecret=my-secret",
    "--set", "github.token=ghp_xxxxx",
]  # fmt: skip
SEED_UPGRADE = ["--set", "image.tag=v1.0.1"]
SEED_SCALE = ["--set", "replicaCount=3"]

# The guide's "values.yaml Reference" blocks that keep working (defaults as the guide shows them).
SEED_WORKING_BLOCKS = {
    "image": {"image": {"repository": "ghcr.io/peteroden/gitlab-copilot-agent", "tag": "latest", "pullPolicy": "IfNotPresent"}},
    "jobRunner": {"jobRunner": {"image": "", "cpuLimit": "1", "memoryLimit": "1Gi", "timeout": 600}},
    "secrets": {"gitlab": {"url": "", "token": "", "webhookSecret": ""}, "github": {"token": ""}},
    "serviceAccount": {"serviceAccount": {"create": True, "name": ""}},
    "telemetry": {
        "telemetry": {
            "otlpEndpoint": "",
            "environment": "",
            "collector": {
                "image": {"repository": "otel/opentelemetry-collector-contrib", "tag": "0.115.0"},
                "resources": {"limits": {"cpu": "200m", "memory": "256Mi"}, "requests": {"cpu": "50m", "memory": "128Mi"}},
            },
        }
    },
    # the guide's example endpoint: the seed spoke OTLP over gRPC
    "telemetry-grpc": {"telemetry": {"otlpEndpoint": "http://otel-collector:4317", "environment": "production"}},
    "jira": {
        "jira": {
            "url": "", "email": "", "apiToken": "", "projectMap": "", "triggerStatus": "AI Ready",
            "inProgressStatus": "In Progress", "inReviewStatus": "In Review", "pollInterval": 30,
        }
    },
}  # fmt: skip

# The guide's controller.* and redis.* values, and the key each became here.
SEED_RENAMED = [
    ("controller.port=8000", "api.port"),
    ("controller.logLevel=info", "logLevel"),
    ("controller.taskExecutor=kubernetes", "taskExecutor"),
    ("controller.stateBackend=redis", "Temporal holds all state"),
    ("controller.dispatchBackend=kubernetes", "taskExecutor"),
    ("controller.copilotModel=gpt-4", "copilot.model"),
    ("controller.copilotProviderType=azure", "copilot.providerType"),
    ("controller.copilotProviderBaseUrl=https://x.openai.azure.com", "copilot.providerBaseUrl"),
    ("controller.copilotProviderApiKey=k", "copilot.providerApiKey"),
    ("controller.copilotPlugins=a", "COPILOT_PLUGINS"),
    ("controller.resources.limits.cpu=500m", "api.resources and worker.resources"),
    ("controller.somethingElse=1", "api.* and worker.*"),
    ("redis.enabled=true", "Temporal holds all state"),
    ("redis.storage=1Gi", "remove redis"),
]


def _config(manifests: list[dict]) -> dict[str, str]:
    (config,) = by(manifests, "ConfigMap")
    return config["data"]


def _deployment(manifests: list[dict], suffix: str) -> dict:
    (found,) = [m for m in by(manifests, "Deployment") if m["metadata"]["name"].endswith(suffix)]
    return found


def _chart_pods(manifests: list[dict]) -> dict[str, dict]:
    """The pod templates of the chart's own workloads: API, worker, bootstrap."""
    pods = {}
    for m in manifests:
        name = m["metadata"]["name"]
        if m["kind"] in {"Deployment", "Job"} and name.rsplit("-", 1)[-1] in {"api", "worker", "bootstrap"}:
            pods[name.rsplit("-", 1)[-1]] = m["spec"]["template"]
    return pods


def test_the_seed_install_command_renders_with_its_secrets(helm):
    manifests = template(helm, "copilot-agent", *SEED_INSTALL)
    assert _config(manifests)["GITLAB_URL"] == "https://gitlab.example.com"
    (secret,) = by(manifests, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {
        "GITLAB_TOKEN": "glpat-xxxxx",
        "GITLAB_WEBHOOK_SECRET": "my-secret",
        "GITHUB_TOKEN": "ghp_xxxxx",
    }


def test_the_seed_upgrade_command_sets_the_image_tag(helm):
    manifests = template(helm, "copilot-agent", *SEED_UPGRADE)
    images = {c["image"] for pod in _chart_pods(manifests).values() for c in pod["spec"]["containers"]}
    assert images == {"ghcr.io/peteroden/gitlab-copilot-agent:v1.0.1"}


def test_the_seed_replica_count_sizes_api_and_worker(helm):
    scaled = template(helm, "copilot-agent", *SEED_SCALE)
    assert [_deployment(scaled, s)["spec"]["replicas"] for s in ("-api", "-worker")] == [3, 3]
    default = template(helm, "copilot-agent")
    assert [_deployment(default, s)["spec"]["replicas"] for s in ("-api", "-worker")] == [2, 2]
    to_zero = template(helm, "copilot-agent", "--set", "replicaCount=0")
    assert [_deployment(to_zero, s)["spec"]["replicas"] for s in ("-api", "-worker")] == [0, 0]


@pytest.mark.parametrize("block", sorted(SEED_WORKING_BLOCKS))
def test_the_seed_values_reference_blocks_render(helm, block, tmp_path, monkeypatch):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(SEED_WORKING_BLOCKS[block]))
    manifests = template(helm, "copilot-agent", "-f", str(values))
    config = _config(manifests)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # the settings the pods start with are valid
    if block == "jobRunner":
        assert (settings.k8s_job_cpu_limit, settings.k8s_job_memory_limit, settings.k8s_job_timeout) == (
            "1",
            "1Gi",
            600,
        )
    if block == "image":
        (pod, *_) = _chart_pods(manifests).values()
        assert pod["spec"]["containers"][0]["image"] == "ghcr.io/peteroden/gitlab-copilot-agent:latest"
    if block == "telemetry-grpc":
        assert (
            otlp_protocol(settings) == "grpc" and otlp_url(settings, "traces") == "http://otel-collector:4317"
        )
        assert settings.environment == "production"
    if block == "jira":
        assert config["JIRA_TRIGGER_STATUS"] == "AI Ready" and config["JIRA_PROJECT_MAP"] == ""


@pytest.mark.parametrize(("setting", "named"), SEED_RENAMED, ids=[s for s, _ in SEED_RENAMED])
def test_seed_values_that_moved_fail_naming_the_new_key(helm, setting, named):
    result = run_helm(helm, "template", "agent", str(CHART_DIR), "--set", setting, check=False)
    assert result.returncode != 0, f"{setting} rendered:\n{result.stdout[:500]}"
    key = setting.split("=")[0].split(".")[0]
    assert named in result.stderr and key in result.stderr, result.stderr


def test_a_seed_json_project_map_string_is_passed_through(helm, tmp_path):
    seed_map = json.dumps({"mappings": {"PROJ": {"repo": "group/app", "target_branch": "main"}}})
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"jira": {"projectMap": seed_map}}))
    manifests = template(helm, "agent", "-f", str(values))
    assert json.loads(_config(manifests)["JIRA_PROJECT_MAP"]) == json.loads(seed_map)


MATURE_CHART_VALUES = {
    "extraEnv": [
        {"name": "AGENT_RUNS_PER_SECOND", "value": "2"},
        {"name": "EXTRA_FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "k"}}},
    ],
    "extraEnvFrom": [{"configMapRef": {"name": "my-settings"}}, {"secretRef": {"name": "my-secrets"}}],
    "hostAliases": [{"ip": "10.0.0.5", "hostnames": ["gitlab.corp.internal"]}],
    "podAnnotations": {"team": "platform"},
    "nodeSelector": {"topology.kubernetes.io/zone": "a"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "agents", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]
            }
        }
    },
    "worker": {"nodeSelector": {"pool": "agents"}, "podAnnotations": {"role": "worker"}},
}  # fmt: skip


def test_mature_chart_values_reach_every_pod_of_the_chart(helm, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(MATURE_CHART_VALUES))
    manifests = template(helm, "agent", "-f", str(values))
    pods = _chart_pods(manifests)
    assert sorted(pods) == ["api", "bootstrap", "worker"]
    for component, pod in pods.items():
        spec, container = pod["spec"], pod["spec"]["containers"][-1]
        assert spec["hostAliases"] == MATURE_CHART_VALUES["hostAliases"], component
        assert spec["tolerations"] == MATURE_CHART_VALUES["tolerations"], component
        assert spec["affinity"] == MATURE_CHART_VALUES["affinity"], component
        assert pod["metadata"]["annotations"]["team"] == "platform", component
        expected_selector = {"topology.kubernetes.io/zone": "a"} | (
            {"pool": "agents"} if component == "worker" else {}
        )
        assert spec["nodeSelector"] == expected_selector, component
        # the operator's env comes after the chart's: extraEnvFrom overrides the ConfigMap
        assert container["envFrom"][0]["configMapRef"]["name"] == "agent-gitlab-copilot-agent"
        assert container["envFrom"][1:] == MATURE_CHART_VALUES["extraEnvFrom"], component
        assert container["env"][-2:] == MATURE_CHART_VALUES["extraEnv"], component
    assert pods["worker"]["metadata"]["annotations"]["role"] == "worker"
    assert "role" not in pods["api"]["metadata"]["annotations"]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_without_them_the_pods_carry_none_of_it(helm):
    for component, pod in _chart_pods(template(helm, "agent")).items():
        assert not {"hostAliases", "tolerations", "affinity", "nodeSelector"} & set(pod["spec"]), component
        assert len(pod["spec"]["containers"][-1]["envFrom"]) == 1, component


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ("extraEnv[0].value=x", "name"),
        ("hostAliases[0].ip=10.0.0.5", "hostnames"),
        ("extraEnvFrom[0].configMap.name=x", "configMap"),
        ("replicaCount=-1", "replicaCount"),
    ],
)
def test_malformed_extra_values_are_refused_by_the_schema(helm, setting, where):
    result = run_helm(helm, "template", "agent", str(CHART_DIR), "--set", setting, check=False)
    assert result.returncode != 0 and "schema" in result.stderr and where in result.stderr, result.stderr
