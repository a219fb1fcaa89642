"""OTEL_RESOURCE_ATTRIBUTES (a seed variable, seed parity 4.6.6) still reaches every signal's resource,
merged under the service's own attributes, as the OpenTelemetry SDK defines it."""

from contracts.settings import Settings
from telemetry.resource import service_resource


def test_resource_attributes_from_the_environment_are_merged_under_ours(monkeypatch):
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=agent-worker-1,k8s.namespace.name=agents,service.version=9"
    )
    settings = Settings(_env_file=None, environment="prod", otel_service_name="copilot")
    attributes = service_resource(settings, "gitlab-copilot-agent-worker").attributes
    assert attributes["k8s.pod.name"] == "agent-worker-1" and attributes["k8s.namespace.name"] == "agents"
    assert attributes["service.name"] == "copilot" and attributes["deployment.environment"] == "prod"
    assert attributes["service.version"] != "9"  # the package's version wins over the environment's
    assert attributes["gitlab_copilot_agent.component"] == "worker"
