"""Seed variables that no longer exist here or changed meaning, so none is ignored silently.

At start-up the API and the worker log one warning naming every such variable found in the
environment or `.env`, each with its replacement or the reason it went (docs/migration-from-seed.md
has the same list). A name that is a setting of this service (a field of `Settings`) is never
reported: the list can name variables other work brings back, and they stop being reported the
moment they are read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from contracts.settings import Settings, raw_environment

_K8S = "replaced by the Kubernetes Job executor (TASK_EXECUTOR=kubernetes): the Azure queue / KEDA / Container Apps path is gone"
_TEMPORAL = "Temporal is the state (workflow IDs deduplicate, ADR 0001)"

# name -> what became of it
RETIRED: dict[str, str] = {
    # state (seed §3.6, §4.5)
    "STATE_BACKEND": _TEMPORAL,
    "REDIS_URL": _TEMPORAL,
    "REDIS_HOST": _TEMPORAL,
    # Azure dispatch (seed §4.5)
    "DISPATCH_BACKEND": _K8S,
    "AZURE_STORAGE_CONNECTION_STRING": _K8S,
    "AZURE_STORAGE_ACCOUNT_URL": _K8S,
    "AZURE_STORAGE_QUEUE_URL": _K8S,
    "AZURE_CLIENT_ID": _K8S,
    "TASK_QUEUE_NAME": _K8S + " (TEMPORAL_TASK_QUEUE is a Temporal task queue, a different thing)",
    "TASK_BLOB_CONTAINER": _K8S,
    "ACA_JOB_TIMEOUT": _K8S + "; use K8S_JOB_TIMEOUT",
    "QUEUE_VISIBILITY_BUFFER": _K8S,
    "ACA_SUBSCRIPTION_ID": _K8S,
    "ACA_RESOURCE_GROUP": _K8S,
    "ACA_JOB_NAME": _K8S,
    "K8S_SECRET_NAME": "agent Jobs hold no Secret: they clone through the worker's Job proxy (ADR 0012)",
    "K8S_CONFIGMAP_NAME": "agent Jobs get their task from the worker, not from a ConfigMap",
    "K8S_JOB_INSTANCE_LABEL": "agent Jobs are labelled by the worker",
    "K8S_JOB_HOST_ALIASES": "set hostAliases in the Helm values instead",
    "SANDBOX_METHOD": "the local executor always uses bubblewrap; Kubernetes Jobs are their own sandbox",
    "TASK_TYPE": "agent Job inputs are built by the worker (AGENT_TASK)",
    "TASK_ID": "agent Job inputs are built by the worker (AGENT_TASK)",
    "TASK_PAYLOAD": "agent Job inputs are built by the worker (AGENT_TASK)",
    "CONFIG_FILE": "the seed's config v2 was never loaded; per-project settings live in JIRA_PROJECT_MAP_FILE",
    # GitLab, auth and server (seed §4.1)
    "HOST": "the bind address is the API's command line (uvicorn --host; Helm api.port)",
    "PORT": "the bind address is the API's command line (uvicorn --port; Helm api.port; API_PORT for make run)",
    "AGENT_GITLAB_USERNAME": "renamed GITLAB_AGENT_USERNAME (each credential's user comes from GET /user anyway)",
    "CLONE_DIR": "renamed WORK_DIR",
    "SHUTDOWN_TIMEOUT": "the worker drains for 30 s (Helm worker.terminationGracePeriodSeconds); unfinished work resumes elsewhere",
    "PROMPT_STRATEGY": "one strategy only: the diff chosen by git and the context are inlined in the prompt (the seed's "
    "file-based mode broke in remote workers and made the agent explore the whole repository, seed #183)",
    "ADMIN_TOKEN": "there is no POST /config/reload: put the map in JIRA_PROJECT_MAP_FILE, read again when it changes (ADR 0021)",
    "GIT_CLONE_MAX_RETRIES": "clones are retried by the activity's Temporal retry policy (3 attempts)",
    "GIT_CLONE_BACKOFF_BASE": "clones are retried by the activity's Temporal retry policy (5 s, doubling, at most 2 min)",
    "ALLOW_HTTP_CLONE": "the service clones the URL GitLab reports for the project, http or https",
    "COPILOT_PLUGINS": "plugins are never installed at run time (the sandbox reaches only the model proxy): install them in the image and list them in COPILOT_PLUGIN_DIRS",
    "COPILOT_PLUGIN_MARKETPLACES": "plugins are never installed at run time: install them in the image and list them in COPILOT_PLUGIN_DIRS",
    # polling (seed §4.3)
    "GITLAB_POLL_LOOKBACK": "the poller's watermark is durable (the Schedule's last result); a first poll looks back 24 h",
    # telemetry (seed §4.6)
    "SERVICE_VERSION": "service.version is the package version",
    "DEPLOYMENT_ENV": "renamed ENVIRONMENT",
    "GRPC_VERBOSITY": "no Python gRPC logging to quieten",
}

# Same name, different meaning: reported only for the seed's value.
CHANGED: dict[str, tuple[str, str]] = {
    "ENVIRONMENT": (
        "development",
        "ENVIRONMENT is now deployment.environment of traces and metrics; serve /docs with ENABLE_DOCS=true",
    ),
}


def seed_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The seed variables set in `environ` that this service does not read as the seed did."""
    fields = {name.upper() for name in Settings.model_fields}
    upper = {name.upper(): value for name, value in environ.items()}
    found = {name: why for name, why in RETIRED.items() if name in upper and name not in fields}
    for name, (value, why) in CHANGED.items():
        if str(upper.get(name, "")).strip().lower() == value and not (
            name == "ENVIRONMENT" and upper.get("ENABLE_DOCS")
        ):
            found[name] = why
    return found


def seed_warning(environ: Mapping[str, str] | None = None) -> str | None:
    """One warning naming every seed variable that is set and no longer means what it did."""
    found = seed_variables(raw_environment() if environ is None else environ)
    if not found:
        return None
    lines = [f"  {name}: {why}" for name, why in sorted(found.items())]
    return (
        f"{len(found)} seed setting(s) are set but not used as the seed used them "
        "(docs/migration-from-seed.md):\n" + "\n".join(lines)
    )


__all__ = ["CHANGED", "RETIRED", "seed_variables", "seed_warning", "warn_about_seed_settings"]


def warn_about_seed_settings() -> str | None:
    """Log `seed_warning()` once, as the process starts (after logging is set up)."""
    text = seed_warning()
    if text:
        logging.getLogger(__name__).warning(text)
    return text
