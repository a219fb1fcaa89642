"""The batch/v1 Job of one agent run, built with the official client's models.

Two containers share one `emptyDir`: the init container `clone` holds the GitLab token (from the
Secret, nowhere else) and clones into the volume; the container `agent` holds only the model
provider's credentials and runs the same `run_task` as the local executor on that clone. See
docs/kubernetes-executor.md for why.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from kubernetes.client import (
    V1Capabilities,
    V1Container,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1Job,
    V1JobSpec,
    V1ObjectMeta,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecretKeySelector,
    V1SecurityContext,
    V1Volume,
    V1VolumeMount,
)

from contracts.settings import Settings
from executors.base import safe_name
from executors.k8s_channel import TASK_ENV, encode_task

APP = "gitlab-copilot-agent"
COMPONENT = "agent-job"
LABEL_PREFIX = "gitlab-copilot-agent"
RUN_LABEL = f"{LABEL_PREFIX}/run"
CLONE_CONTAINER = "clone"
AGENT_CONTAINER = "agent"
WORK_MOUNT = "/workspace"  # not /work: a stand-in run substitutes mount paths inside other paths
TMP_MOUNT = "/tmp"  # noqa: S108 - the pod's own emptyDir; the root filesystem is read-only
REPO_DIR = f"{WORK_MOUNT}/repo"
UID = 1000
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def job_name(run_id: str) -> str:
    """DNS-1123 and <= 63 characters (a Job's name becomes its pods' `job-name` label); the hash of
    the full run ID keeps two long IDs with the same prefix apart."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    return f"{safe_name(run_id, 52)}-{digest}"


def label_value(text: str) -> str:
    """`text` in the label-value syntax: [A-Za-z0-9_.-], alphanumeric at both ends, <= 63 characters."""
    value = _LABEL_VALUE_BAD.sub("-", text)
    if len(value) > 63:
        value = f"{value[:52]}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def _secret_env(name: str, secret: str, key: str) -> V1EnvVar:
    selector = V1SecretKeySelector(name=secret, key=key)
    return V1EnvVar(name=name, value_from=V1EnvVarSource(secret_key_ref=selector))


def _agent_env(settings: Settings, task: Any, traceparent: str | None) -> list[V1EnvVar]:
    """What the agent container gets: model provider settings and its task, never the GitLab token."""
    plain = {
        "HOME": TMP_MOUNT,
        "TMPDIR": TMP_MOUNT,
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LOG_LEVEL": settings.log_level,
        "COPILOT_MODEL": settings.copilot_model,
        "COPILOT_PROVIDER_TYPE": settings.copilot_provider_type,
        "COPILOT_PROVIDER_BASE_URL": settings.copilot_provider_base_url,
        "COPILOT_TIMEOUT": str(settings.copilot_timeout),
        # The image sets these; a worker configured otherwise passes its own (same image by default).
        "COPILOT_CLI_PATH": settings.copilot_cli_path,
        "COPILOT_CACHE_DIR": settings.copilot_cache_dir,
        TASK_ENV: encode_task(task),
    }
    if traceparent:
        plain["TRACEPARENT"] = traceparent
    env = [V1EnvVar(name=name, value=value) for name, value in plain.items() if value]
    secret = settings.k8s_secret_name
    if settings.copilot_provider_base_url:
        if settings.copilot_provider_api_key is not None:
            env.append(_secret_env("COPILOT_PROVIDER_API_KEY", secret, "COPILOT_PROVIDER_API_KEY"))
    elif settings.github_token is not None:
        env.append(_secret_env("GITHUB_TOKEN", secret, "GITHUB_TOKEN"))
    return env


def _container_security() -> V1SecurityContext:
    return V1SecurityContext(
        run_as_non_root=True,
        run_as_user=UID,
        run_as_group=UID,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        privileged=False,
        capabilities=V1Capabilities(drop=["ALL"]),
        seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
    )


def build_job(
    task: Any, settings: Settings, *, run_id: str, image: str, namespace: str, traceparent: str | None
) -> V1Job:
    """The Job for `task`. Raises ValueError when the task does not fit into the Job."""
    name = job_name(run_id)
    labels = {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": APP,
        RUN_LABEL: label_value(run_id),
        f"{LABEL_PREFIX}/kind": label_value(task.kind),
        f"{LABEL_PREFIX}/project": label_value(task.project_path),
    }
    # Labels are cut to 63 characters; annotations keep the exact values for operators.
    annotations = {f"{LABEL_PREFIX}/run-id": run_id, f"{LABEL_PREFIX}/project": task.project_path}
    resources = V1ResourceRequirements(
        requests={"cpu": settings.k8s_job_cpu_request, "memory": settings.k8s_job_memory_request},
        limits={"cpu": settings.k8s_job_cpu_limit, "memory": settings.k8s_job_memory_limit},
    )
    mounts = [
        V1VolumeMount(name="work", mount_path=WORK_MOUNT),
        V1VolumeMount(name="tmp", mount_path=TMP_MOUNT),
    ]
    python = settings.k8s_job_python
    clone = V1Container(
        name=CLONE_CONTAINER,
        image=image,
        command=[python, "-m", "executors.clone_step", "--dest", REPO_DIR],
        working_dir=settings.k8s_job_workdir,
        env=[
            V1EnvVar(name="HOME", value=TMP_MOUNT),
            V1EnvVar(name="PYTHONDONTWRITEBYTECODE", value="1"),
            V1EnvVar(name="CLONE_REPO", value=task.repo.model_dump_json()),
            _secret_env("GITLAB_TOKEN", settings.k8s_secret_name, "GITLAB_TOKEN"),
        ],
        resources=resources,
        security_context=_container_security(),
        volume_mounts=mounts,
        termination_message_policy="FallbackToLogsOnError",
    )
    agent = V1Container(
        name=AGENT_CONTAINER,
        image=image,
        command=[python, "-m", "executors.job_runner", "--repo", REPO_DIR],
        working_dir=settings.k8s_job_workdir,
        env=_agent_env(settings, task, traceparent),
        resources=resources,
        security_context=_container_security(),
        volume_mounts=mounts,
        termination_message_policy="FallbackToLogsOnError",
    )
    pod = V1PodSpec(
        restart_policy="Never",
        automount_service_account_token=False,
        enable_service_links=False,  # no other services' addresses in the agent's environment
        security_context=V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=UID,
            run_as_group=UID,
            fs_group=UID,
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
        init_containers=[clone],
        containers=[agent],
        volumes=[
            V1Volume(name="work", empty_dir=V1EmptyDirVolumeSource()),
            V1Volume(name="tmp", empty_dir=V1EmptyDirVolumeSource()),
        ],
    )
    return V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=V1ObjectMeta(name=name, namespace=namespace, labels=labels, annotations=annotations),
        spec=V1JobSpec(
            backoff_limit=0,  # Temporal owns retries
            active_deadline_seconds=settings.k8s_job_timeout,
            ttl_seconds_after_finished=settings.k8s_job_ttl,
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels=labels, annotations=annotations), spec=pod
            ),
        ),
    )
