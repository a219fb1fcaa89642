"""The rendered chart fences agent Jobs: egress only to the worker's Job proxy and kube-dns, a worker
Role that cannot read Secrets or exec, the Job proxy reachable from agent-job pods only, Temporal's
client certificate mounted into the service's own pods only, and the optional admission policy."""

from __future__ import annotations

from contracts.settings import Settings

from .conftest import NAMESPACE, RELEASE
from .test_chart import by_kind, one, pod_specs

FULL = f"{RELEASE}-gitlab-copilot-agent"
WORKER_SELECTOR = {
    "app.kubernetes.io/name": "gitlab-copilot-agent",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "worker",
}
KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def test_agent_jobs_reach_only_the_job_proxy_and_kube_dns(rendered):
    _, manifests = rendered
    policy = one(manifests, "NetworkPolicy", f"{FULL}-agent-job")["spec"]
    proxy, dns = policy["egress"]
    assert proxy == {
        "to": [{"podSelector": {"matchLabels": WORKER_SELECTOR}}],
        "ports": [{"port": 8081, "protocol": "TCP"}],
    }
    assert dns == {
        "to": [KUBE_DNS],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }
    assert "ipBlock" not in str(policy)  # no 443 to anywhere, no CIDR at all


def test_only_agent_job_pods_reach_the_workers_job_proxy(rendered):
    variant, manifests = rendered
    ingress = one(manifests, "NetworkPolicy", f"{FULL}-worker")["spec"]["ingress"]
    proxy_rules = [r for r in ingress if any(p["port"] == 8081 for p in r["ports"])]
    assert proxy_rules == [
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "agent-job"}}}],
            "ports": [{"port": 8081, "protocol": "TCP"}],
        }
    ]
    service = one(manifests, "Service", f"{FULL}-job-proxy")["spec"]
    assert service["selector"] == WORKER_SELECTOR
    assert service["ports"] == [
        {"name": "job-proxy", "port": 8081, "targetPort": "job-proxy", "protocol": "TCP"}
    ]
    worker = one(manifests, "Deployment", f"{FULL}-worker")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "job-proxy", "containerPort": 8081, "protocol": "TCP"} in worker["ports"]
    config = one(manifests, "ConfigMap", FULL)["data"]
    assert config["K8S_PROXY_URL"] == f"http://{FULL}-job-proxy.{NAMESPACE}.svc:8081"
    assert config["K8S_PROXY_LISTEN"] == "0.0.0.0:8081"
    assert "K8S_SECRET_NAME" not in config  # Jobs read no Secret any more


def test_every_empty_dir_of_the_chart_and_of_agent_jobs_has_a_size_limit(rendered):
    variant, manifests = rendered
    for name, spec in pod_specs(manifests):
        for volume in spec.get("volumes", []):
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), (variant, name, volume["name"])
    config = one(manifests, "ConfigMap", FULL)["data"]
    assert (config["K8S_JOB_WORK_SIZE_LIMIT"], config["K8S_JOB_TMP_SIZE_LIMIT"]) == ("4Gi", "1Gi")


def test_the_worker_role_reads_no_secret_and_execs_nothing(rendered):
    _, manifests = rendered
    role = one(manifests, "Role", f"{FULL}-worker")
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert resources == {"jobs", "pods", "pods/log"}
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in role["rules"])
    assert by_kind(manifests, "ClusterRole") == [] and by_kind(manifests, "ClusterRoleBinding") == []


def test_temporal_client_certificates_reach_only_the_services_own_pods(render_tool, chart):
    values = {
        "temporal": {"enabled": False, "address": "t:7233", "tls": {"enabled": True, "existingSecret": "tls"}}
    }
    manifests = render_tool.render(chart, values, name=RELEASE, namespace=NAMESPACE)
    mounted = {}
    for name, spec in pod_specs(manifests):
        volumes = [v for v in spec.get("volumes", []) if v.get("secret", {}).get("secretName") == "tls"]
        if volumes:
            assert volumes[0]["secret"]["defaultMode"] == 0o440, name
            mounted[name] = [
                m["mountPath"]
                for c in spec["containers"]
                for m in c.get("volumeMounts", [])
                if m["name"] == volumes[0]["name"]
            ]
    assert set(mounted) == {f"{FULL}-api", f"{FULL}-worker", f"{FULL}-bootstrap"}
    config = one(manifests, "ConfigMap", FULL)["data"]
    settings = Settings(
        _env_file=None, **{k.lower(): v for k, v in config.items() if k.lower() in Settings.model_fields}
    )
    assert settings.temporal_tls and settings.temporal_tls_cert == "/etc/temporal-tls/tls.crt"
    assert settings.temporal_tls_key == "/etc/temporal-tls/tls.key"


def test_the_admission_policy_pins_worker_created_jobs_to_the_agent_job_shape(render_tool, chart):
    manifests = render_tool.render(
        chart, {"rbac": {"admissionPolicy": True}}, name=RELEASE, namespace=NAMESPACE
    )
    (policy,) = by_kind(manifests, "ValidatingAdmissionPolicy")
    (binding,) = by_kind(manifests, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": NAMESPACE
    }
    [condition] = policy["spec"]["matchConditions"]
    assert f"system:serviceaccount:{NAMESPACE}:{FULL}" in condition["expression"]
    checks = " ".join(v["expression"] for v in policy["spec"]["validations"])
    for needle in (
        "c.image ==",
        "emptyDir.sizeLimit",
        "valueFrom",
        "automountServiceAccountToken",
        "hostNetwork",
        "privileged",
        "agent-job",
    ):
        assert needle in checks, needle
    default = render_tool.render(chart, {}, name=RELEASE, namespace=NAMESPACE)
    assert by_kind(default, "ValidatingAdmissionPolicy") == []  # opt-in: cluster-scoped
