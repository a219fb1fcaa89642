"""The Helm chart: lint, Kubernetes schema validity, security posture, probes, RBAC and settings wiring."""

from __future__ import annotations

import base64
from pathlib import Path

import kubernetes_validate
import pytest

from contracts.settings import Settings

from .conftest import CHART_DIR, NAMESPACE, RELEASE, VALUES_FILES

SETTINGS_ENV_NAMES = {name.upper() for name in Settings.model_fields}
SECRET_KEYS = {
    "GITLAB_TOKEN",
    "GITLAB_WEBHOOK_SECRET",
    "GITHUB_TOKEN",
    "COPILOT_PROVIDER_API_KEY",
    "JIRA_API_TOKEN",
    "TEMPORAL_API_KEY",
}
KUBE_VERSION = "1.32.0"


def by_kind(manifests, kind: str) -> list[dict]:
    return [m.body for m in manifests if m.kind == kind]


def one(manifests, kind: str, name: str) -> dict:
    matches = [m.body for m in manifests if m.kind == kind and m.name == name]
    assert len(matches) == 1, (
        f"expected one {kind} {name}, got {[m.name for m in manifests if m.kind == kind]}"
    )
    return matches[0]


def pod_specs(manifests) -> list[tuple[str, dict]]:
    """(object name, pod spec) of every workload the chart itself renders (not the subchart)."""
    specs = []
    for m in manifests:
        if not m.source.startswith("gitlab-copilot-agent/templates/"):
            continue
        if m.kind in {"Deployment", "Job"}:
            specs.append((m.name, m.body["spec"]["template"]["spec"]))
    return specs


@pytest.mark.parametrize("variant", sorted(VALUES_FILES))
def test_lint_has_no_errors(render_tool, values_for, variant):
    messages = render_tool.lint(CHART_DIR, values_for(variant))
    assert [str(m) for m in messages if m.is_error] == []


def test_lint_has_no_warnings(render_tool, chart):
    messages = render_tool.lint(chart, {})
    assert [str(m) for m in messages if m.severity >= 2] == []


def test_every_manifest_is_valid_kubernetes(rendered):
    variant, manifests = rendered
    assert manifests, variant
    for m in manifests:
        try:
            kubernetes_validate.validate(m.body, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{variant}: {m.kind}/{m.name} from {m.source}: {exc.message}")


def test_pods_meet_pod_security_restricted(rendered):
    variant, manifests = rendered
    specs = pod_specs(manifests)
    assert {name.rsplit("-", 1)[-1] for name, _ in specs} >= {"api", "worker", "bootstrap"}
    for name, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (variant, name)
            assert sc["readOnlyRootFilesystem"] is True, (variant, name)
            assert sc["capabilities"] == {"drop": ["ALL"]}, (variant, name)
            assert sc["runAsUser"] == 1000, (variant, name)
            assert "privileged" not in sc


def test_only_the_kubernetes_worker_mounts_an_api_token(rendered):
    variant, manifests = rendered
    for name, spec in pod_specs(manifests):
        expected = name.endswith("-worker")  # every shipped values file uses the Kubernetes executor
        assert spec["automountServiceAccountToken"] is expected, (variant, name)
    for sa in by_kind(manifests, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False


def test_worker_role_has_exactly_the_job_runner_verbs(rendered):
    _, manifests = rendered
    role = one(manifests, "Role", f"{RELEASE}-gitlab-copilot-agent-worker")
    rules = {
        (rule["apiGroups"][0], resource): sorted(rule["verbs"])
        for rule in role["rules"]
        for resource in rule["resources"]
    }
    assert rules == {
        ("batch", "jobs"): ["create", "delete", "get"],
        ("", "pods"): ["get", "list"],
        ("", "pods/log"): ["get"],
    }
    binding = one(manifests, "RoleBinding", f"{RELEASE}-gitlab-copilot-agent-worker")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-gitlab-copilot-agent", "namespace": NAMESPACE}
    ]


def test_api_probes_health_and_ready(rendered):
    _, manifests = rendered
    api = one(manifests, "Deployment", f"{RELEASE}-gitlab-copilot-agent-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
    assert container["command"][:3] == ["uvicorn", "api.app:create_app", "--factory"]


def test_worker_probe_follows_the_metrics_endpoint(rendered):
    variant, manifests = rendered
    worker = one(manifests, "Deployment", f"{RELEASE}-gitlab-copilot-agent-worker")
    pod = worker["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python", "worker.py"]
    if variant == "production":
        assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9464"
    else:
        assert "livenessProbe" not in container
        assert "prometheus.io/scrape" not in pod["metadata"]["annotations"]


def test_bootstrap_is_a_hook_that_waits_for_temporal(rendered):
    _, manifests = rendered
    job = one(manifests, "Job", f"{RELEASE}-gitlab-copilot-agent-bootstrap")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    spec = job["spec"]["template"]["spec"]
    assert spec["containers"][0]["command"] == ["python", "worker.py", "bootstrap"]
    wait = spec["initContainers"][0]
    config = one(manifests, "ConfigMap", f"{RELEASE}-gitlab-copilot-agent")
    assert wait["env"] == [{"name": "TEMPORAL_ADDRESS", "value": config["data"]["TEMPORAL_ADDRESS"]}]


def test_network_policies_fence_the_api_and_agent_jobs(rendered):
    variant, manifests = rendered
    api = one(manifests, "NetworkPolicy", f"{RELEASE}-gitlab-copilot-agent-api")
    assert api["spec"]["policyTypes"] == ["Ingress"]
    api_ports = [p["port"] for rule in api["spec"]["ingress"] for p in rule["ports"]]
    assert api_ports == ([8000, 9464] if variant == "production" else [8000])

    job = one(manifests, "NetworkPolicy", f"{RELEASE}-gitlab-copilot-agent-agent-job")
    assert job["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/component": "agent-job"}}
    assert job["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert job["spec"]["ingress"] == []
    # Egress: the worker's Job proxy and kube-dns, nothing else (tests/deploy/test_agent_job_isolation.py).


def test_config_and_secret_hold_only_settings_fields(rendered):
    variant, manifests = rendered
    config = one(manifests, "ConfigMap", f"{RELEASE}-gitlab-copilot-agent")
    assert set(config["data"]) <= SETTINGS_ENV_NAMES
    assert not set(config["data"]) & SECRET_KEYS, "secrets must not be in the ConfigMap"
    for secret in by_kind(manifests, "Secret"):
        assert set(secret.get("data") or {}) <= SECRET_KEYS
    for _, spec in pod_specs(manifests):
        for container in spec["containers"] + spec.get("initContainers", []):
            for env in container.get("env", []):
                assert env["name"] in SETTINGS_ENV_NAMES, (variant, env["name"])
                if env["name"] in SECRET_KEYS:
                    assert "secretKeyRef" in env["valueFrom"]


def test_config_map_is_accepted_by_settings(rendered, monkeypatch):
    variant, manifests = rendered
    config = one(manifests, "ConfigMap", f"{RELEASE}-gitlab-copilot-agent")
    for name in SETTINGS_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for key, value in config["data"].items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.k8s_namespace == NAMESPACE
    assert settings.k8s_proxy_url and settings.k8s_proxy_listen == "0.0.0.0:8081"
    assert settings.work_dir == "/work"
    if variant == "production":
        assert settings.temporal_tls is True
        assert settings.temporal_address == "acme-prod.a1b2c.tmprl.cloud:7233"
        assert settings.gitlab_projects == ["platform/api", "platform/web"]
        assert settings.jira_project_map["PLAT"].test_command == "make test"
        assert settings.metrics_port == 9464


def test_temporal_address_points_at_a_rendered_frontend(rendered):
    variant, manifests = rendered
    address = one(manifests, "ConfigMap", f"{RELEASE}-gitlab-copilot-agent")["data"]["TEMPORAL_ADDRESS"]
    services = {m.name for m in manifests if m.kind == "Service"}
    if variant == "production":
        assert address == "acme-prod.a1b2c.tmprl.cloud:7233"
        assert not [name for name in services if "temporal" in name], "no dev server with an address"
        return
    host, port = address.rsplit(":", 1)
    assert port == "7233" and host == f"{RELEASE}-gitlab-copilot-agent-temporal-dev" and host in services


def test_secret_writes_only_given_values(render_tool, chart):
    values = {"gitlab": {"token": "glpat-123", "webhookSecret": "hook"}, "temporal": {"apiKey": ""}}
    manifests = render_tool.render(chart, values, name=RELEASE, namespace=NAMESPACE)
    (secret,) = by_kind(manifests, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"GITLAB_TOKEN": "glpat-123", "GITLAB_WEBHOOK_SECRET": "hook"}


def test_existing_secret_replaces_the_chart_secret(render_tool, chart):
    values = {"secrets": {"existingSecret": "from-vault"}, "gitlab": {"token": "ignored"}}
    manifests = render_tool.render(chart, values, name=RELEASE, namespace=NAMESPACE)
    assert by_kind(manifests, "Secret") == []
    refs = {
        env["valueFrom"]["secretKeyRef"]["name"]
        for _, spec in pod_specs(manifests)
        for container in spec["containers"]
        for env in container.get("env", [])
        if "valueFrom" in env
    }
    assert refs == {"from-vault"}


def test_local_executor_gets_no_role_and_no_token(render_tool, chart):
    manifests = render_tool.render(chart, {"taskExecutor": "local"}, name=RELEASE, namespace=NAMESPACE)
    assert by_kind(manifests, "Role") == [] and by_kind(manifests, "RoleBinding") == []
    worker = one(manifests, "Deployment", f"{RELEASE}-gitlab-copilot-agent-worker")
    assert worker["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_hpa_replaces_fixed_replicas(rendered):
    variant, manifests = rendered
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind(manifests, "HorizontalPodAutoscaler")}
    for component in ("api", "worker"):
        deployment = one(manifests, "Deployment", f"{RELEASE}-gitlab-copilot-agent-{component}")
        if variant == "production":
            assert deployment["metadata"]["name"] in hpas
            assert "replicas" not in deployment["spec"]
        else:
            assert hpas == set() and deployment["spec"]["replicas"] >= 1


def test_ingress_terminates_tls_in_production(rendered):
    variant, manifests = rendered
    ingresses = by_kind(manifests, "Ingress")
    if variant != "production":
        assert ingresses == []
        return
    (ingress,) = ingresses
    assert ingress["spec"]["tls"] == [
        {"hosts": ["copilot-agent.example.com"], "secretName": "copilot-agent-tls"}
    ]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{RELEASE}-gitlab-copilot-agent", "port": {"name": "http"}}


def test_optional_components_render_valid_manifests(render_tool, chart):
    values = {
        "telemetry": {"collector": {"enabled": True}},
        "temporalDev": {"enabled": True},
        "metrics": {"enabled": True},
    }
    manifests = render_tool.render(chart, values, name=RELEASE, namespace=NAMESPACE)
    for m in manifests:
        kubernetes_validate.validate(m.body, KUBE_VERSION, strict=True)
    config = one(manifests, "ConfigMap", f"{RELEASE}-gitlab-copilot-agent")["data"]
    assert (
        config["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{RELEASE}-gitlab-copilot-agent-otel-collector:4318"
    )
    assert config["TEMPORAL_ADDRESS"] == f"{RELEASE}-gitlab-copilot-agent-temporal-dev:7233"
    names = {spec_name for spec_name, _ in pod_specs(manifests)}
    assert {
        f"{RELEASE}-gitlab-copilot-agent-otel-collector",
        f"{RELEASE}-gitlab-copilot-agent-temporal-dev",
    } <= names


def test_temporal_tls_secret_is_mounted_where_settings_point(render_tool, chart):
    values = {"temporal": {"tls": {"enabled": True, "existingSecret": "temporal-mtls", "caKey": ""}}}
    manifests = render_tool.render(chart, values, name=RELEASE, namespace=NAMESPACE)
    config = one(manifests, "ConfigMap", f"{RELEASE}-gitlab-copilot-agent")["data"]
    assert config["TEMPORAL_TLS_CERT"] == "/etc/temporal-tls/tls.crt"
    assert config["TEMPORAL_TLS_KEY"] == "/etc/temporal-tls/tls.key"
    assert "TEMPORAL_TLS_CA" not in config
    worker = one(manifests, "Deployment", f"{RELEASE}-gitlab-copilot-agent-worker")["spec"]["template"][
        "spec"
    ]
    assert {
        "name": "temporal-tls",
        "secret": {"secretName": "temporal-mtls", "defaultMode": 0o440},
    } in worker["volumes"]
    mounts = worker["containers"][0]["volumeMounts"]
    assert {"name": "temporal-tls", "mountPath": "/etc/temporal-tls", "readOnly": True} in mounts


def test_chart_declares_no_dependency():
    """Helm refuses a chart whose declared dependency is missing, even when disabled (ADR 8)."""
    import yaml

    chart = yaml.safe_load(Path(CHART_DIR / "Chart.yaml").read_text())
    assert "dependencies" not in chart
