"""docs/migration-from-seed.md names every setting, every chart value and every seed variable.

A setting added to `contracts/settings.py` or a key added to the chart's schema without a row in the
migration guide fails here, and so does a seed variable the guide forgets.
"""

import json
import re
from pathlib import Path

from contracts.settings import Settings, env_name

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "migration-from-seed.md"
SCHEMA = ROOT / "helm" / "gitlab-copilot-agent" / "values.schema.json"

# The seed's environment variables (seed-features §4.1–4.6), by their seed names.
SEED_VARIABLES = """
GITLAB_URL GITLAB_TOKEN GITLAB_TOKEN__<ALIAS> GITLAB_WEBHOOK_SECRET GITHUB_TOKEN COPILOT_PROVIDER_TYPE
COPILOT_PROVIDER_BASE_URL COPILOT_PROVIDER_API_KEY COPILOT_MODEL COPILOT_PLUGINS COPILOT_PLUGIN_MARKETPLACES
HOST PORT LOG_LEVEL ENVIRONMENT AGENT_GITLAB_USERNAME AGENT_AUTHOR_NAME AGENT_AUTHOR_EMAIL CLONE_DIR
SHUTDOWN_TIMEOUT PROMPT_STRATEGY AUTO_MERGE_ENABLED WEBHOOK_IP_ALLOWLIST TRUSTED_PROXIES ADMIN_TOKEN
GIT_CLONE_MAX_RETRIES GIT_CLONE_BACKOFF_BASE ALLOW_HTTP_CLONE
SYSTEM_PROMPT SYSTEM_PROMPT_SUFFIX REVIEW_SYSTEM_PROMPT REVIEW_SYSTEM_PROMPT_SUFFIX CODING_SYSTEM_PROMPT
CODING_SYSTEM_PROMPT_SUFFIX DISCUSSION_SYSTEM_PROMPT DISCUSSION_SYSTEM_PROMPT_SUFFIX
GITLAB_PROJECTS GITLAB_POLL GITLAB_POLL_INTERVAL GITLAB_POLL_LOOKBACK GITLAB_REVIEW_ON_PUSH RESOLUTION_BEHAVIOR
JIRA_URL JIRA_EMAIL JIRA_API_TOKEN JIRA_PROJECT_MAP JIRA_TRIGGER_STATUS JIRA_IN_PROGRESS_STATUS
JIRA_IN_REVIEW_STATUS JIRA_POLL_INTERVAL
TASK_EXECUTOR DISPATCH_BACKEND AZURE_STORAGE_CONNECTION_STRING AZURE_STORAGE_ACCOUNT_URL AZURE_STORAGE_QUEUE_URL
AZURE_CLIENT_ID TASK_QUEUE_NAME TASK_BLOB_CONTAINER K8S_JOB_TIMEOUT ACA_JOB_TIMEOUT QUEUE_VISIBILITY_BUFFER
K8S_NAMESPACE K8S_JOB_IMAGE K8S_JOB_CPU_LIMIT K8S_JOB_MEMORY_LIMIT ACA_SUBSCRIPTION_ID ACA_RESOURCE_GROUP
ACA_JOB_NAME K8S_SECRET_NAME K8S_CONFIGMAP_NAME K8S_JOB_INSTANCE_LABEL K8S_JOB_HOST_ALIASES STATE_BACKEND
REDIS_URL REDIS_HOST SANDBOX_METHOD TASK_TYPE TASK_ID TASK_PAYLOAD CONFIG_FILE
OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL OTEL_SERVICE_NAME SERVICE_VERSION DEPLOYMENT_ENV
OTEL_RESOURCE_ATTRIBUTES GRPC_VERBOSITY
""".split()

# The seed guide's Helm values (deployment-guide.md and seed-features §4.7).
SEED_HELM_VALUES = """
image.repository image.tag image.pullPolicy replicaCount controller.port controller.logLevel
controller.taskExecutor controller.stateBackend controller.dispatchBackend controller.copilotModel
controller.copilotProviderType controller.copilotProviderBaseUrl controller.copilotProviderApiKey
controller.copilotPlugins controller.copilotPluginMarketplaces controller.resources redis.* jobRunner.image
jobRunner.cpuLimit jobRunner.memoryLimit jobRunner.timeout gitlab.url gitlab.token gitlab.webhookSecret
github.token serviceAccount.create serviceAccount.name telemetry.otlpEndpoint telemetry.environment
telemetry.collector.* jira.url jira.email jira.apiToken jira.projectMap jira.triggerStatus
jira.inProgressStatus jira.inReviewStatus jira.pollInterval networkPolicies.* keda.* azurite.* extraEnv
hostAliases clusterDomain
""".split()


def _quoted() -> set[str]:
    """Every name the guide quotes: `A`, and each part of `A`, `B` lists inside one code span."""
    names: set[str] = set()
    for span in re.findall(r"`([^`]+)`", DOC.read_text()):
        names.add(span.strip())
        names.update(part.strip() for part in re.split(r"[,/]", span) if part.strip())
    return names


def _schema_keys(node: dict, prefix: str = "", depth: int = 2) -> list[str]:
    keys = []
    for name, child in node.get("properties", {}).items():
        keys.append(prefix + name)
        if depth > 1 and isinstance(child, dict):
            keys.extend(_schema_keys(child, f"{prefix}{name}.", depth - 1))
    return keys


def test_every_setting_has_a_row():
    quoted = _quoted()
    missing = [env_name(name) for name in Settings.model_fields if env_name(name) not in quoted]
    assert not missing, f"add these settings to docs/migration-from-seed.md: {missing}"


def test_every_chart_value_has_a_row():
    quoted = _quoted()
    missing = [key for key in _schema_keys(json.loads(SCHEMA.read_text())) if key not in quoted]
    assert not missing, f"add these chart values to docs/migration-from-seed.md: {missing}"


def test_every_seed_variable_and_helm_value_is_answered():
    quoted = _quoted()
    missing = [name for name in SEED_VARIABLES + SEED_HELM_VALUES if name not in quoted]
    assert not missing, f"say what became of these seed names in docs/migration-from-seed.md: {missing}"


def test_the_azure_path_is_said_to_be_replaced():
    text = DOC.read_text()
    assert "Kubernetes Job executor" in text and "KEDA" in text and "Container Apps" in text
