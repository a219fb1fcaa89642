"""The Kubernetes stand-in, driven only through the official `kubernetes` client (plus raw HTTP for
the malformed requests the client would never send)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import kubernetes
import pytest
from kubernetes.client import ApiException, BatchV1Api, CoreV1Api

from standins.kubernetes import Fault, KubernetesStandin
from standins.kubernetes.containers import (
    PathMapper,
    default_image_paths,
    expand_references,
    mount_env_name,
)

NS = "agents"
T = TypeVar("T")


@pytest.fixture(scope="module")
def standin() -> Iterator[KubernetesStandin]:
    with KubernetesStandin(image_pull_backoff_after=0.2) as server:
        yield server


@pytest.fixture(scope="module")
def api(standin: KubernetesStandin) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    configuration.host = standin.url
    return kubernetes.client.ApiClient(configuration)


@pytest.fixture(scope="module")
def batch(api: kubernetes.client.ApiClient) -> BatchV1Api:
    return BatchV1Api(api)


@pytest.fixture(scope="module")
def core(api: kubernetes.client.ApiClient) -> CoreV1Api:
    return CoreV1Api(api)


def wait_for(probe: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Poll until the probe returns something truthy. A probe's failed assertion (only_pod before the
    Job controller made the pod) means "not yet" until the timeout, then it is the failure shown."""
    deadline = time.monotonic() + timeout
    last: AssertionError | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except AssertionError as error:
            last, value = error, None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s") from last


def job_body(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    pod_spec = spec.pop("pod_spec", {})
    containers = pod_spec.pop("containers", [{"name": "main", "image": "agent:1", "command": command}])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "copilot-agent", "run": name}},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {"spec": {"restartPolicy": "Never", "containers": containers, **pod_spec}},
        },
    }


def finished(batch: BatchV1Api, name: str) -> Callable[[], Any]:
    def probe() -> Any:
        status = batch.read_namespaced_job_status(name, NS).status
        done = [c for c in status.conditions or [] if c.type in ("Complete", "Failed")]
        return status if done else None

    return probe


def conditions(status: Any) -> dict[str, str | None]:
    return {c.type: c.reason for c in status.conditions or []}


def only_pod(core: CoreV1Api, job: str) -> Any:
    pods = core.list_namespaced_pod(NS, label_selector=f"job-name={job}").items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0]


def python(code: str) -> list[str]:
    return ["python", "-c", code]


# --- running Jobs -----------------------------------------------------------------------------


def test_job_runs_to_complete_and_its_log_is_readable(batch: BatchV1Api, core: CoreV1Api) -> None:
    created = batch.create_namespaced_job(NS, job_body("hello", python("print('hi')")))
    assert created.metadata.uid and created.metadata.resource_version

    status = wait_for(finished(batch, "hello"))

    assert conditions(status) == {
        "SuccessCriteriaMet": "CompletionsReached",
        "Complete": "CompletionsReached",
    }
    assert (status.succeeded, status.active, status.failed) == (1, 0, None)
    assert status.start_time and status.completion_time
    pod = only_pod(core, "hello")
    assert pod.metadata.labels["batch.kubernetes.io/job-name"] == "hello"
    assert pod.metadata.labels["controller-uid"] == created.metadata.uid
    assert pod.metadata.owner_references[0].uid == created.metadata.uid
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert core.read_namespaced_pod_log(pod.metadata.name, NS) == "hi\n"


def test_init_container_hands_a_file_to_the_main_container_through_an_empty_dir(
    batch: BatchV1Api, core: CoreV1Api
) -> None:
    mounts = [{"name": "work", "mountPath": "/work"}]
    pod_spec = {
        "volumes": [{"name": "work", "emptyDir": {}}],
        "initContainers": [
            {
                "name": "clone",
                "image": "git",
                "command": ["sh", "-c", "echo from-init > /work/handoff.txt"],
                "volumeMounts": mounts,
            }
        ],
        "containers": [
            {
                "name": "agent",
                "image": "agent",
                "command": ["sh", "-c"],
                "args": ['cat /work/handoff.txt; pwd; echo "$REPO"; echo "$K8S_STANDIN_MOUNT_WORK"'],
                "workingDir": "/work/repo",
                "env": [{"name": "REPO", "value": "/work/repo"}],
                "volumeMounts": mounts,
            }
        ],
    }
    batch.create_namespaced_job(NS, job_body("handoff", [], pod_spec=pod_spec))

    status = wait_for(finished(batch, "handoff"))

    assert "Complete" in conditions(status)
    pod = only_pod(core, "handoff")
    assert pod.status.init_container_statuses[0].state.terminated.reason == "Completed"
    lines = core.read_namespaced_pod_log(pod.metadata.name, NS, container="agent").splitlines()
    volume = lines[3]
    assert lines[0] == "from-init"
    assert volume.endswith(f"{NS}_{pod.metadata.name}/vol-work") and os.path.isabs(volume)
    assert lines[1] == lines[2] == f"{volume}/repo"


def test_secret_env_reaches_only_the_container_that_references_it(
    standin: KubernetesStandin, batch: BatchV1Api, core: CoreV1Api
) -> None:
    core.create_namespaced_secret(
        NS, {"metadata": {"name": "git-credentials"}, "stringData": {"token": "s3cr3t-token"}}
    )
    show = python("import os; print(os.environ.get('GIT_TOKEN', '<unset>'))")
    pod_spec = {
        "initContainers": [
            {
                "name": "clone",
                "image": "git",
                "command": show,
                "env": [
                    {
                        "name": "GIT_TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "git-credentials", "key": "token"}},
                    }
                ],
            }
        ],
        "containers": [{"name": "agent", "image": "agent", "command": show}],
    }
    batch.create_namespaced_job(NS, job_body("secret-env", [], pod_spec=pod_spec))

    wait_for(finished(batch, "secret-env"))

    pod = only_pod(core, "secret-env").metadata.name
    assert core.read_namespaced_pod_log(pod, NS, container="clone") == "s3cr3t-token\n"
    assert core.read_namespaced_pod_log(pod, NS, container="agent") == "<unset>\n"


def test_missing_secret_holds_the_container_until_the_secret_exists(
    standin: KubernetesStandin, batch: BatchV1Api, core: CoreV1Api
) -> None:
    container = {
        "name": "main",
        "image": "agent",
        "command": python("import os; print(os.environ['API_KEY'])"),
        "env": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "late", "key": "key"}}}],
    }
    batch.create_namespaced_job(NS, job_body("late-secret", [], pod_spec={"containers": [container]}))

    def waiting() -> Any:
        statuses = only_pod(core, "late-secret").status.container_statuses or []
        return (
            statuses
            and statuses[0].state.waiting
            and statuses[0].state.waiting.reason == "CreateContainerConfigError"
        )

    wait_for(waiting)
    assert (
        'secret "late" not found'
        in only_pod(core, "late-secret").status.container_statuses[0].state.waiting.message
    )
    standin.add_secret(NS, "late", {"key": "finally"})

    assert "Complete" in conditions(wait_for(finished(batch, "late-secret")))
    assert core.read_namespaced_pod_log(only_pod(core, "late-secret").metadata.name, NS) == "finally\n"


def test_watch_streams_modified_events_through_completion(batch: BatchV1Api) -> None:
    listed = batch.list_namespaced_job(NS, label_selector="run=watched")
    batch.create_namespaced_job(NS, job_body("watched", python("import time; time.sleep(0.3)")))
    seen: list[tuple[str, int | None, str]] = []

    watch = kubernetes.watch.Watch()
    for event in watch.stream(
        batch.list_namespaced_job,
        NS,
        label_selector="run=watched",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=10,
    ):
        status = event["object"].status
        done = [c.type for c in status.conditions or [] if c.type in ("Complete", "Failed")]
        seen.append((event["type"], status.active, done[0] if done else ""))
        if done:
            watch.stop()

    assert seen[0][0] == "ADDED"
    assert ("MODIFIED", 1, "") in seen
    assert seen[-1] == ("MODIFIED", 0, "Complete")


def test_watch_without_resource_version_starts_with_the_current_objects(batch: BatchV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("listed-first", python("pass")))
    wait_for(finished(batch, "listed-first"))

    events = list(
        kubernetes.watch.Watch().stream(
            batch.list_namespaced_job, NS, field_selector="metadata.name=listed-first", timeout_seconds=1
        )
    )

    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "listed-first")]
    assert events[0]["object"].status.succeeded == 1


def test_duplicate_create_is_409_already_exists(standin: KubernetesStandin, batch: BatchV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("only-once", python("pass")))

    with pytest.raises(ApiException) as raised:
        batch.create_namespaced_job(NS, job_body("only-once", python("pass")))

    assert raised.value.status == 409
    body = json.loads(raised.value.body)
    assert (body["kind"], body["reason"]) == ("Status", "AlreadyExists")
    assert standin.jobs_created.count(f"{NS}/only-once") == 1


def test_unknown_job_is_404_not_found(batch: BatchV1Api) -> None:
    with pytest.raises(ApiException) as raised:
        batch.read_namespaced_job("no-such-job", NS)
    assert raised.value.status == 404
    assert json.loads(raised.value.body)["message"] == 'jobs.batch "no-such-job" not found'


@pytest.mark.parametrize("name", ["x" * 64, "Upper-Case", "under_score", "-leading"])
def test_invalid_name_is_422(batch: BatchV1Api, name: str) -> None:
    with pytest.raises(ApiException) as raised:
        batch.create_namespaced_job(NS, job_body(name, python("pass")))
    assert raised.value.status == 422
    body = json.loads(raised.value.body)
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_job_without_containers_is_422(batch: BatchV1Api) -> None:
    with pytest.raises(ApiException) as raised:
        batch.create_namespaced_job(NS, job_body("empty", [], pod_spec={"containers": []}))
    assert raised.value.status == 422
    causes = json.loads(raised.value.body)["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.template.spec.containers"]


def test_job_the_stand_in_cannot_run_is_422_with_every_reason(batch: BatchV1Api) -> None:
    body = job_body("unrunnable", [], parallelism=2)
    body["spec"]["template"]["spec"].update(
        restartPolicy="OnFailure",
        containers=[
            {"name": "main", "image": "entrypoint-only", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}
        ],
        volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}],
    )
    with pytest.raises(ApiException) as raised:
        batch.create_namespaced_job(NS, body)
    fields = {c["field"] for c in json.loads(raised.value.body)["details"]["causes"]}
    assert {
        "spec.parallelism",
        "spec.template.spec.restartPolicy",
        "spec.template.spec.volumes[0]",
        "spec.template.spec.containers[0].volumeMounts[0].name",
    } <= fields
    assert any(f.startswith("spec.template.spec.containers[0].command") for f in fields)


# --- stopping Jobs ----------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of ours lingers as a zombie until reaped; the stand-in reaps it.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _started_pid(core: CoreV1Api, job: str) -> int:
    def pid() -> int | None:
        pods = core.list_namespaced_pod(NS, label_selector=f"job-name={job}").items
        if not pods or pods[0].status.phase != "Running":
            return None
        log = core.read_namespaced_pod_log(pods[0].metadata.name, NS)
        return int(log.split()[0]) if log.strip() else None

    return wait_for(pid)


SLEEPER = python("import os, sys, time; print(os.getpid(), flush=True); time.sleep(60)")


def test_background_delete_kills_the_process_and_deletes_the_pods(batch: BatchV1Api, core: CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("long-run", SLEEPER))
    pid = _started_pid(core, "long-run")

    batch.delete_namespaced_job("long-run", NS, propagation_policy="Background")

    wait_for(lambda: not _pid_alive(pid))
    wait_for(lambda: not core.list_namespaced_pod(NS, label_selector="job-name=long-run").items)
    with pytest.raises(ApiException) as raised:
        batch.read_namespaced_job("long-run", NS)
    assert raised.value.status == 404


def test_foreground_delete_keeps_the_job_until_its_pods_are_gone(batch: BatchV1Api, core: CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("fg-run", SLEEPER))
    pid = _started_pid(core, "fg-run")

    answer = batch.delete_namespaced_job("fg-run", NS, propagation_policy="Foreground")

    assert answer["metadata"]["deletionTimestamp"]
    wait_for(lambda: not _pid_alive(pid))
    wait_for(lambda: not batch.list_namespaced_job(NS, label_selector="run=fg-run").items)
    assert not core.list_namespaced_pod(NS, label_selector="job-name=fg-run").items


def test_delete_without_policy_orphans_the_pods_as_batch_v1_does(
    standin: KubernetesStandin, core: CoreV1Api
) -> None:
    BatchV1Api_ = BatchV1Api(core.api_client)
    BatchV1Api_.create_namespaced_job(NS, job_body("orphaning", SLEEPER))
    pid = _started_pid(core, "orphaning")

    response = httpx.delete(f"{standin.url}/apis/batch/v1/namespaces/{NS}/jobs/orphaning")

    assert response.status_code == 200
    assert "child pods are preserved" in response.headers["Warning"]
    pod = only_pod(core, "orphaning")
    assert pod.status.phase == "Running" and not pod.metadata.owner_references
    assert _pid_alive(pid)
    os.kill(pid, 15)
    wait_for(lambda: only_pod(core, "orphaning").status.phase == "Failed")


def test_active_deadline_kills_the_pod_and_fails_the_job(batch: BatchV1Api, core: CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("slow", SLEEPER, activeDeadlineSeconds=1))
    pid = _started_pid(core, "slow")

    status = wait_for(finished(batch, "slow"))

    assert conditions(status) == {"FailureTarget": "DeadlineExceeded", "Failed": "DeadlineExceeded"}
    assert (status.failed, status.active) == (1, 0)
    assert not _pid_alive(pid)
    assert not core.list_namespaced_pod(NS, label_selector="job-name=slow").items


def test_backoff_limit_retries_then_fails(batch: BatchV1Api, core: CoreV1Api) -> None:
    batch.create_namespaced_job(
        NS, job_body("flaky", python("import sys; print('boom'); sys.exit(3)"), backoffLimit=1)
    )

    status = wait_for(finished(batch, "flaky"))

    assert conditions(status)["Failed"] == "BackoffLimitExceeded"
    assert status.failed == 2
    pods = core.list_namespaced_pod(NS, label_selector="job-name=flaky").items
    assert len(pods) == 2
    for pod in pods:
        terminated = pod.status.container_statuses[0].state.terminated
        assert (pod.status.phase, terminated.exit_code, terminated.reason) == ("Failed", 3, "Error")


def test_fallback_to_logs_on_error_becomes_the_termination_message(
    batch: BatchV1Api, core: CoreV1Api
) -> None:
    container = {
        "name": "main",
        "image": "agent",
        "command": python("import sys; print('line1'); print('fatal: no repo'); sys.exit(1)"),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    batch.create_namespaced_job(NS, job_body("explains", [], pod_spec={"containers": [container]}))
    wait_for(finished(batch, "explains"))
    terminated = only_pod(core, "explains").status.container_statuses[0].state.terminated
    assert terminated.message == "line1\nfatal: no repo"


def test_ttl_after_finished_deletes_the_job(batch: BatchV1Api, core: CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("short-lived", python("pass"), ttlSecondsAfterFinished=0))

    wait_for(lambda: not batch.list_namespaced_job(NS, label_selector="run=short-lived").items)
    assert not core.list_namespaced_pod(NS, label_selector="job-name=short-lived").items


# --- faults -----------------------------------------------------------------------------------


def test_image_pull_error_keeps_the_pod_pending(
    standin: KubernetesStandin, batch: BatchV1Api, core: CoreV1Api
) -> None:
    standin.inject("pull-", Fault.IMAGE_PULL_ERROR)
    batch.create_namespaced_job(NS, job_body("pull-fails", python("print('never')")))

    def reason() -> str | None:
        statuses = only_pod(core, "pull-fails").status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting.reason if waiting else None

    assert wait_for(lambda: reason() in ("ErrImagePull", "ImagePullBackOff")) is True
    assert wait_for(lambda: reason() == "ImagePullBackOff")
    pod = only_pod(core, "pull-fails")
    assert pod.status.phase == "Pending"
    assert batch.read_namespaced_job_status("pull-fails", NS).status.active == 1
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod_log(pod.metadata.name, NS)
    assert raised.value.status == 400 and "waiting to start: ImagePullBackOff" in raised.value.body
    batch.delete_namespaced_job("pull-fails", NS, propagation_policy="Background")


def test_oom_killed_fails_the_job(standin: KubernetesStandin, batch: BatchV1Api, core: CoreV1Api) -> None:
    standin.inject("app=memory-hog", Fault.OOM_KILLED)
    body = job_body("hog", python("print('never')"))
    body["metadata"]["labels"]["app"] = "memory-hog"
    batch.create_namespaced_job(NS, body)

    status = wait_for(finished(batch, "hog"))

    assert conditions(status)["Failed"] == "BackoffLimitExceeded"
    terminated = only_pod(core, "hog").status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")


def test_unschedulable_pod_stays_pending(
    standin: KubernetesStandin, batch: BatchV1Api, core: CoreV1Api
) -> None:
    standin.inject("nowhere", "unschedulable")
    # The deadline ends the Job and deletes its pod, as Kubernetes does: it leaves the probe time to
    # see the pending pod on a loaded machine.
    batch.create_namespaced_job(NS, job_body("nowhere", python("pass"), activeDeadlineSeconds=2))

    def scheduled_condition() -> Any:
        pod = only_pod(core, "nowhere")
        return next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)

    condition = wait_for(scheduled_condition)
    assert (condition.status, condition.reason) == ("False", "Unschedulable")
    assert condition.message == "0/1 nodes are available: insufficient memory."
    assert only_pod(core, "nowhere").status.phase == "Pending"
    assert conditions(wait_for(finished(batch, "nowhere"), timeout=20))["Failed"] == "DeadlineExceeded"


def test_deadline_exceeded_fault_fails_at_once(
    standin: KubernetesStandin, batch: BatchV1Api, core: CoreV1Api
) -> None:
    standin.inject("expired", Fault.DEADLINE_EXCEEDED)
    batch.create_namespaced_job(NS, job_body("expired", ["sh", "-c", "touch /tmp/should-not-run; sleep 60"]))

    status = wait_for(finished(batch, "expired"), timeout=3)

    assert conditions(status) == {"FailureTarget": "DeadlineExceeded", "Failed": "DeadlineExceeded"}
    reasons = [e.reason for e in standin.events if e.name == "expired"]
    assert reasons[:2] == ["SuccessfulCreate", "DeadlineExceeded"]


def test_inject_rejects_unknown_faults(standin: KubernetesStandin) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        standin.inject("x", "disk_full")
    with pytest.raises(ValueError, match="prefix or a label selector"):
        standin.inject(" ", Fault.OOM_KILLED)


# --- logs and malformed requests --------------------------------------------------------------


def test_log_tail_lines_and_limit_bytes(batch: BatchV1Api, core: CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("chatty", python("for i in range(5): print(f'line{i}')")))
    wait_for(finished(batch, "chatty"))
    pod = only_pod(core, "chatty").metadata.name

    assert core.read_namespaced_pod_log(pod, NS, tail_lines=2) == "line3\nline4\n"
    assert core.read_namespaced_pod_log(pod, NS, limit_bytes=7) == "line0\nl"
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod_log(pod, NS, container="sidecar")
    assert raised.value.status == 400


def test_malformed_requests_get_kubernetes_status_errors(standin: KubernetesStandin) -> None:
    jobs = f"{standin.url}/apis/batch/v1/namespaces/{NS}/jobs"
    cases = [
        (httpx.post(jobs, content=b"{not json", headers={"Content-Type": "application/json"}), 400),
        (httpx.post(jobs, json=["a", "list"]), 400),
        (httpx.post(jobs, content=b"x" * (3 * 1024 * 1024 + 1)), 413),
        (httpx.get(jobs, params={"labelSelector": "app in (a,b)"}), 400),
        (httpx.get(jobs, params={"labelSelector": "=value"}), 400),
        (httpx.get(jobs, params={"watch": "true", "timeoutSeconds": "soon"}), 400),
        (httpx.put(f"{jobs}/x", json={}), 405),
        (httpx.get(f"{standin.url}/apis/batch/v1/namespaces/Bad_NS/jobs"), 404),
        (httpx.get(f"{standin.url}/apis/unknown.group/v1/things"), 404),
        (
            httpx.post(
                f"{standin.url}/api/v1/namespaces/{NS}/secrets",
                json={"metadata": {"name": "s"}, "data": {"k": "%%%"}},
            ),
            400,
        ),
    ]
    for response, code in cases:
        assert response.status_code == code, response.text
        assert response.json()["kind"] == "Status"
    assert f"{NS}/s" not in standin.jobs_created


def test_discovery_endpoints_answer(api: kubernetes.client.ApiClient) -> None:
    assert kubernetes.client.VersionApi(api).get_code().major == "1"
    assert "v1" in kubernetes.client.CoreApi(api).get_api_versions().versions
    assert [g.name for g in kubernetes.client.ApisApi(api).get_api_versions().groups] == ["batch"]


# --- path translation, without a server -------------------------------------------------------


def test_path_mapper_replaces_whole_path_components_only() -> None:
    to_host = PathMapper(
        {"/work": "/tmp/pod/vol-work", "/work/cache": "/tmp/pod/vol-cache", "/tmp": "/tmp/pod/vol-tmp"}
    )
    assert (
        to_host("cd /work && ls /work/x /workspace /a/work")
        == "cd /tmp/pod/vol-work && ls /tmp/pod/vol-work/x /workspace /a/work"
    )
    assert to_host("--cache=/work/cache/pip") == "--cache=/tmp/pod/vol-cache/pip"
    assert to_host("/tmp/x") == "/tmp/pod/vol-tmp/x"


def test_paths_of_the_image_are_never_mapped_onto_a_mount() -> None:
    """Host paths are not container paths: a checkout under /tmp keeps its python and its code."""
    to_host = PathMapper({"/tmp": "/tmp/pod/vol-tmp"}, image_paths=["/tmp/clone"])
    assert to_host("/tmp/clone/.venv/bin/python") == "/tmp/clone/.venv/bin/python"
    assert to_host("cd /tmp/clone && ls /tmp/x /tmp/clone2") == (
        "cd /tmp/clone && ls /tmp/pod/vol-tmp/x /tmp/pod/vol-tmp/clone2"
    )
    assert to_host("PYTHONPATH=/tmp/clone:/tmp/lib") == "PYTHONPATH=/tmp/clone:/tmp/pod/vol-tmp/lib"


def test_the_default_image_is_this_checkout_and_this_python() -> None:
    paths = default_image_paths()
    assert str(Path(__file__).resolve().parents[2]) in paths
    assert sys.prefix in paths


def test_env_references_and_mount_names() -> None:
    assert expand_references("$(A)/b $(MISSING) $$(A)", {"A": "x"}) == "x/b $(MISSING) $(A)"
    assert mount_env_name("agent-work.1") == "K8S_STANDIN_MOUNT_AGENT_WORK_1"


def test_wrongly_typed_fields_are_422_not_a_crash(batch: BatchV1Api, standin: KubernetesStandin) -> None:
    body = job_body("typed", python("pass"))
    body["metadata"]["labels"] = ["not", "a", "map"]
    body["spec"]["template"]["spec"]["volumes"] = 7
    body["spec"]["template"]["spec"]["containers"][0]["env"] = {"A": "b"}
    body["spec"]["activeDeadlineSeconds"] = "soon"

    response = httpx.post(f"{standin.url}/apis/batch/v1/namespaces/{NS}/jobs", json=body)

    assert response.status_code == 422
    fields = {c["field"] for c in response.json()["details"]["causes"]}
    assert fields == {
        "metadata.labels",
        "spec.template.spec.volumes",
        "spec.template.spec.containers[0].env",
        "spec.activeDeadlineSeconds",
    }
    assert f"{NS}/typed" not in standin.jobs_created


def test_what_a_container_leaves_running_dies_with_it(standin: KubernetesStandin, batch: BatchV1Api) -> None:
    """As with a container's PID namespace: a setsid, double-forked process does not outlive the
    container's main process, so nothing of an init container is alive when the next one starts."""
    escape = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        open(os.environ['K8S_STANDIN_MOUNT_WORK'] + '/pid', 'w').write(str(os.getpid()))\n"
        "        time.sleep(120)\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)\n"
    )
    probe = "import os, sys; pid = int(open(os.environ['K8S_STANDIN_MOUNT_WORK'] + '/pid').read()); "
    probe += "print('alive' if os.path.exists(f'/proc/{pid}') else 'gone')"
    mounts = [{"name": "work", "mountPath": "/work"}]
    pod_spec = {
        "volumes": [{"name": "work", "emptyDir": {}}],
        "initContainers": [
            {"name": "first", "image": "a", "command": python(escape), "volumeMounts": mounts}
        ],
        "containers": [{"name": "next", "image": "a", "command": python(probe), "volumeMounts": mounts}],
    }
    batch.create_namespaced_job(NS, job_body("escape", [], pod_spec=pod_spec))

    assert "Complete" in conditions(wait_for(finished(batch, "escape"), timeout=20))
    [pod_dir] = [p for p in standin.work_dir.iterdir() if p.name.startswith(f"{NS}_escape-")]
    assert (pod_dir / "logs" / "next.log").read_text() == "gone\n"


def test_missing_executable_is_a_start_error(batch: BatchV1Api, core: CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("no-binary", ["/nonexistent/agent-runner"]))

    assert conditions(wait_for(finished(batch, "no-binary")))["Failed"] == "BackoffLimitExceeded"
    terminated = only_pod(core, "no-binary").status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (128, "StartError")
    assert "/nonexistent/agent-runner" in terminated.message


def test_dry_run_creates_nothing(batch: BatchV1Api, standin: KubernetesStandin) -> None:
    answered = batch.create_namespaced_job(NS, job_body("dry", python("pass")), dry_run="All")

    assert answered.metadata.name == "dry"
    assert f"{NS}/dry" not in standin.jobs_created
    assert not batch.list_namespaced_job(NS, label_selector="run=dry").items


def test_generate_name_gets_a_random_suffix(batch: BatchV1Api) -> None:
    body = job_body("unused", python("pass"))
    body["metadata"] = {"generateName": "review-"}

    created = batch.create_namespaced_job(NS, body)

    assert created.metadata.name.startswith("review-") and len(created.metadata.name) == len("review-") + 5


def test_stop_kills_every_running_process() -> None:
    with KubernetesStandin() as own:
        configuration = kubernetes.client.Configuration()
        configuration.host = own.url
        client = kubernetes.client.ApiClient(configuration)
        BatchV1Api(client).create_namespaced_job(NS, job_body("left-running", SLEEPER))
        pid = _started_pid(CoreV1Api(client), "left-running")
        work_dir = own.work_dir
    assert not _pid_alive(pid)
    assert not work_dir.exists()
