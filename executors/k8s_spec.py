"""The batch/v1 Job of one agent run, built with the official client's models.

Three or four containers, one after the other, and no credential in any of them:

1. init `clone`: fetches the repository through the worker's Job proxy with a `git` lease (the proxy
   adds the GitLab token; the Job never sees it) into the `work` volume;
2. init `agent`: runs the same `run_task` as the local executor on that clone, reaching the model
   through the Job proxy with a `model` lease (the proxy adds the provider key), and writes its
   result to the `result` volume;
3. init `tests` (implement Jobs only): after the agent container has ended, applies the agent's patch
   to the checkout of the target branch the clone container made in the `pristine` volume (never
   mounted by the agent), resets the harness files and runs the target branch's test command; it
   holds no lease and no key, and writes the result with that evidence to the `evidence` volume;
4. `result`: starts after every agent process is gone, runs as another uid, and prints the one
   frame the worker trusts, signed with a per-Job key only this container holds.

Leases and key: executors.job_keys. Every volume has a sizeLimit. See docs/kubernetes-executor.md.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

from kubernetes.client import (
    V1Capabilities,
    V1Container,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1Job,
    V1JobSpec,
    V1ObjectMeta,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecurityContext,
    V1Volume,
    V1VolumeMount,
)

from contracts.settings import Settings
from executors.base import safe_name
from executors.job_keys import JobKeys
from executors.job_result import KEY_ENV
from executors.job_tests import BASE_NAME_ENV as TESTS_BASE_NAME_ENV
from executors.job_tests import BASE_SHA_ENV as TESTS_BASE_SHA_ENV
from executors.job_tests import COMMAND_ENV as TESTS_COMMAND_ENV
from executors.k8s_channel import TASK_ENV, encode_task

APP = "gitlab-copilot-agent"
COMPONENT = "agent-job"
LABEL_PREFIX = "gitlab-copilot-agent"
RUN_LABEL = f"{LABEL_PREFIX}/run"
CLONE_CONTAINER = "clone"
AGENT_CONTAINER = "agent"
RESULT_CONTAINER = "result"
TESTS_CONTAINER = "tests"
WORK_MOUNT = "/workspace"  # not /work: a stand-in run substitutes mount paths inside other paths
TMP_MOUNT = "/tmp"  # noqa: S108 - the pod's own emptyDir; the root filesystem is read-only
RESULT_MOUNT = "/result"
REPO_DIR = f"{WORK_MOUNT}/repo"
RESULT_FILE = f"{RESULT_MOUNT}/result.json"
PRISTINE_MOUNT = "/pristine"
PRISTINE_DIR = f"{PRISTINE_MOUNT}/repo"
EVIDENCE_MOUNT = "/evidence"
EVIDENCE_FILE = f"{EVIDENCE_MOUNT}/result.json"
RESULT_SIZE_LIMIT = "16Mi"  # the result file is capped at 4 MiB (k8s_channel)
UID = 1000
RESULT_UID = 1001  # the result container: not the agent's uid
LEASE_MARGIN_S = 300  # a lease outlives the Job's deadline by this much, never more
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


def proxy_clone_url(settings: Settings, clone_url: str) -> str:
    """Where the clone container fetches `clone_url` from: the Job proxy's git route."""
    return f"{settings.k8s_proxy_url}/git/{urlsplit(clone_url).path.lstrip('/')}"


RUN_SETTINGS = (
    "system_prompt",
    "system_prompt_suffix",
    "review_system_prompt",
    "review_system_prompt_suffix",
    "coding_system_prompt",
    "coding_system_prompt_suffix",
    "discussion_system_prompt",
    "discussion_system_prompt_suffix",
    "copilot_follow_ups",
    "review_custom_agent",
    "coding_custom_agent",
    "discussion_custom_agent",
    "copilot_plugin_dirs",
    "copilot_plugin_root",
)


def _agent_env(settings: Settings, task: Any, traceparent: str | None, model_lease: str) -> list[V1EnvVar]:
    """What the agent container gets: the proxy's address, its model lease and its task. No token,
    no provider key (the proxy holds those)."""
    plain = {
        "HOME": TMP_MOUNT,
        "TMPDIR": TMP_MOUNT,
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LOG_LEVEL": settings.log_level,
        "COPILOT_MODEL": settings.copilot_model,
        "COPILOT_PROVIDER_TYPE": settings.copilot_provider_type,
        "COPILOT_PROVIDER_BASE_URL": f"{settings.k8s_proxy_url}/p",
        "COPILOT_PROVIDER_API_KEY": model_lease,
        "COPILOT_TIMEOUT": str(settings.copilot_timeout),
        # The image sets these; a worker configured otherwise passes its own (same image by default).
        "COPILOT_CLI_PATH": settings.copilot_cli_path,
        "COPILOT_CACHE_DIR": settings.copilot_cache_dir,
        TASK_ENV: encode_task(task),
    }
    # The prompt's persona, the follow-up budget, custom agents and plugin directories are read inside
    # the Job from its own settings, so the worker's values travel with it (the seed's remote workers
    # lost them). Plugin directories must exist in the Job's image.
    for name in RUN_SETTINGS:
        value = getattr(settings, name)
        plain[name.upper()] = ",".join(value) if isinstance(value, list) else str(value)
    if traceparent:
        plain["TRACEPARENT"] = traceparent
    return [V1EnvVar(name=name, value=value) for name, value in plain.items() if value]


def _container_security(uid: int = UID) -> V1SecurityContext:
    return V1SecurityContext(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        privileged=False,
        capabilities=V1Capabilities(drop=["ALL"]),
        seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
    )


def build_job(
    task: Any,
    settings: Settings,
    *,
    run_id: str,
    image: str,
    namespace: str,
    traceparent: str | None,
    keys: JobKeys,
    now: float,
) -> V1Job:
    """The Job for `task`. Raises ValueError when the task does not fit into the Job."""
    name = job_name(run_id)
    expires = int(now) + settings.k8s_job_timeout + settings.k8s_job_pending_timeout + LEASE_MARGIN_S
    git_lease = keys.lease(
        name, "git", expires=expires, repo=task.repo.clone_url, credential=task.repo.credential
    )
    model_lease = keys.lease(name, "model", expires=expires)
    repo = task.repo.model_copy(update={"clone_url": proxy_clone_url(settings, task.repo.clone_url)})
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
    agent_mounts = [*mounts, V1VolumeMount(name="result", mount_path=RESULT_MOUNT)]
    python = settings.k8s_job_python
    # Implement runs hand back test evidence: measured by the `tests` container on the `pristine`
    # checkout, which the agent container never mounts (executors/job_tests.py).
    measured = task.kind == "implement"
    target = task.repo.branches[0] if task.repo.branches else task.repo.head_sha[:12]
    pristine_mounts = [V1VolumeMount(name="pristine", mount_path=PRISTINE_MOUNT)] if measured else []
    clone = V1Container(
        name=CLONE_CONTAINER,
        image=image,
        command=[
            python,
            "-m",
            "executors.clone_step",
            "--dest",
            REPO_DIR,
            *(["--pristine", PRISTINE_DIR] if measured else []),
        ],
        working_dir=settings.k8s_job_workdir,
        env=[
            V1EnvVar(name="HOME", value=TMP_MOUNT),
            V1EnvVar(name="PYTHONDONTWRITEBYTECODE", value="1"),
            V1EnvVar(name="CLONE_REPO", value=repo.model_dump_json()),
            V1EnvVar(name="CLONE_TOKEN", value=git_lease),
        ],
        resources=resources,
        security_context=_container_security(),
        volume_mounts=[*mounts, *pristine_mounts],
        termination_message_policy="FallbackToLogsOnError",
    )
    agent = V1Container(
        name=AGENT_CONTAINER,
        image=image,
        command=[python, "-m", "executors.job_runner", "--repo", REPO_DIR, "--out", RESULT_FILE],
        working_dir=settings.k8s_job_workdir,
        env=_agent_env(settings, task, traceparent, model_lease),
        resources=resources,
        security_context=_container_security(),
        volume_mounts=agent_mounts,
        termination_message_policy="FallbackToLogsOnError",
    )
    tests = V1Container(
        name=TESTS_CONTAINER,
        image=image,
        command=[
            python,
            "-m",
            "executors.job_tests",
            "--tree",
            PRISTINE_DIR,
            "--in",
            RESULT_FILE,
            "--out",
            EVIDENCE_FILE,
        ],
        working_dir=settings.k8s_job_workdir,
        env=[
            V1EnvVar(name=name, value=value)
            for name, value in {
                "HOME": TMP_MOUNT,
                "TMPDIR": TMP_MOUNT,
                "PYTHONDONTWRITEBYTECODE": "1",
                TESTS_COMMAND_ENV: getattr(task, "test_command", None) or "",
                TESTS_BASE_SHA_ENV: task.repo.head_sha,
                TESTS_BASE_NAME_ENV: f"target branch {target}",
            }.items()
            if value
        ],
        resources=resources,
        security_context=_container_security(),
        volume_mounts=[
            *pristine_mounts,
            V1VolumeMount(name="tests-tmp", mount_path=TMP_MOUNT),  # not the agent's /tmp
            V1VolumeMount(name="result", mount_path=RESULT_MOUNT, read_only=True),
            V1VolumeMount(name="evidence", mount_path=EVIDENCE_MOUNT),
        ],
        termination_message_policy="FallbackToLogsOnError",
    )
    result_mount = (
        V1VolumeMount(name="evidence", mount_path=EVIDENCE_MOUNT, read_only=True)
        if measured
        else V1VolumeMount(name="result", mount_path=RESULT_MOUNT, read_only=True)
    )
    result = V1Container(
        name=RESULT_CONTAINER,
        image=image,
        command=[python, "-m", "executors.job_result", "--in", EVIDENCE_FILE if measured else RESULT_FILE],
        working_dir=settings.k8s_job_workdir,
        env=[
            V1EnvVar(name="PYTHONDONTWRITEBYTECODE", value="1"),
            V1EnvVar(name=KEY_ENV, value=keys.result_key(name)),
        ],
        resources=V1ResourceRequirements(
            requests={"cpu": "50m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "256Mi"}
        ),
        security_context=_container_security(RESULT_UID),
        volume_mounts=[result_mount],
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
        # Init containers run one after the other, the app container after the last: when `result`
        # starts, the agent container (and every process it started) has ended.
        init_containers=[clone, agent, tests] if measured else [clone, agent],
        containers=[result],
        volumes=[
            V1Volume(
                name="work", empty_dir=V1EmptyDirVolumeSource(size_limit=settings.k8s_job_work_size_limit)
            ),
            V1Volume(
                name="tmp", empty_dir=V1EmptyDirVolumeSource(size_limit=settings.k8s_job_tmp_size_limit)
            ),
            V1Volume(name="result", empty_dir=V1EmptyDirVolumeSource(size_limit=RESULT_SIZE_LIMIT)),
            *(
                [
                    V1Volume(
                        name="pristine",
                        empty_dir=V1EmptyDirVolumeSource(size_limit=settings.k8s_job_work_size_limit),
                    ),
                    V1Volume(
                        name="tests-tmp",
                        empty_dir=V1EmptyDirVolumeSource(size_limit=settings.k8s_job_tmp_size_limit),
                    ),
                    V1Volume(name="evidence", empty_dir=V1EmptyDirVolumeSource(size_limit=RESULT_SIZE_LIMIT)),
                ]
                if measured
                else []
            ),
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
