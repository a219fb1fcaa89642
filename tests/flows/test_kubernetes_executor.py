"""TASK_EXECUTOR=kubernetes against the Kubernetes stand-in (which really runs the Job's init and agent
containers as local processes), the GitLab stand-in, the real Copilot CLI on the scripted model and,
for the flows, real Temporal."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client import BatchV1Api, CoreV1Api
from temporalio.client import WorkflowExecutionStatus

from activities.http_errors import PermanentError, to_application_error
from contracts.ids import review_id
from contracts.models import ReviewMRInput
from contracts.settings import REPO_ROOT, Settings
from contracts.temporal import review_search_attributes
from core import markers
from devenv.stack import DEVELOPER, WEBHOOK_SECRET, stack_settings
from devenv.worker_process import WorkerProcess
from executors.k8s_spec import job_name
from executors.kubernetes import AgentJobFailed, KubernetesExecutor
from executors.tasks import ImplementTask, RepoRef, ReviewTask
from standins.kubernetes import Fault, KubernetesStandin
from standins.model_server import ScriptedBrain
from tests.flows.helpers import agent_notes, finding, finish, inline_discussions, wait_review, wait_workflow
from tests.flows.implement_support import MUL_TEST, agent_writes
from tests.flows.test_review_flow import NEW_CALC

SECRET = "agent-secrets"


@pytest.fixture(scope="module")
def k8s() -> Iterator[KubernetesStandin]:
    with KubernetesStandin(image_pull_backoff_after=0.2) as server:
        yield server


@pytest.fixture
def namespace(k8s: KubernetesStandin, users) -> Iterator[str]:
    """A namespace per test (the stand-in is shared), with the Secret the Helm chart would provide."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    k8s.add_secret(name, SECRET, {"GITLAB_TOKEN": users.agent_token})
    yield name
    k8s.clear_faults()


def k8s_settings(k8s: KubernetesStandin, namespace: str) -> dict:
    return {
        "task_executor": "kubernetes",
        "k8s_api_url": k8s.url,
        "k8s_namespace": namespace,
        "k8s_secret_name": SECRET,
        "k8s_job_image": "gitlab-copilot-agent:test",
        # The stand-in runs the command on this machine: this venv's python in this checkout.
        "k8s_job_python": sys.executable,
        "k8s_job_workdir": str(REPO_ROOT),
        "k8s_job_poll_interval": 0.2,
        "k8s_job_pending_timeout": 1,
    }


@pytest.fixture
def settings_overrides(k8s, namespace) -> dict:
    return k8s_settings(k8s, namespace)


def apis(k8s: KubernetesStandin) -> tuple[BatchV1Api, CoreV1Api]:
    configuration = kubernetes.client.Configuration()
    configuration.host = k8s.url
    client = kubernetes.client.ApiClient(configuration)
    return BatchV1Api(client), CoreV1Api(client)


def jobs_created(k8s: KubernetesStandin, namespace: str) -> list[str]:
    return [j for j in k8s.jobs_created if j.startswith(f"{namespace}/")]


def open_mr(gitlab):
    gitlab.commit("group/app", "feature", {"app/calc.py": NEW_CALC}, "feat: add div", author=DEVELOPER)
    return gitlab.create_mr("group/app", "feature", title="Add div", author=DEVELOPER)


def review_task(gitlab, iid: int) -> ReviewTask:
    mr = gitlab.mr_json("group/app", iid)
    project = gitlab.store.project("group/app")
    return ReviewTask(
        repo=RepoRef(
            clone_url=f"{gitlab.url}/{project.path_with_namespace}.git",
            head_sha=mr["sha"],
            branches=[mr["target_branch"], mr["source_branch"]],
        ),
        project_path="group/app",
        mr_iid=iid,
        title="Add div",
        base_sha=mr["diff_refs"]["base_sha"],
    )


def direct_settings(temporal_server, task_queue, gitlab, users, model, tmp_path, k8s, namespace) -> Settings:
    return stack_settings(
        temporal_address=temporal_server.address,
        task_queue=task_queue,
        gitlab=gitlab,
        agent_token=users.agent_token,
        model=model,
        work=tmp_path / "work",
        **k8s_settings(k8s, namespace),
    )


async def wait_for(probe, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(probe)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s")


def agent_runs(model) -> int:
    """Reviewer conversations the model saw start (a first request: no assistant turn yet)."""
    return sum(
        1
        for r in model.completions()
        if "reviewer-finish_review" in r.tools and not any(m.get("role") == "assistant" for m in r.messages)
    )


def files_containing(root: Path, needle: str) -> list[str]:
    return [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and needle.encode() in p.read_bytes()
    ]


# --- end to end ----------------------------------------------------------------------------------
async def test_review_runs_in_a_job_and_the_gitlab_token_never_reaches_the_agent(
    stack, k8s, namespace, users
):
    stack.model.brain.brain.when(
        finding("app/calc.py", 10, "Division by zero is not handled"),
        finish("Adds div; one bug."),
        tool_offered="reviewer-finish_review",
    )
    stack.gitlab.set_webhook(f"{stack.api_url}/webhook", WEBHOOK_SECRET)
    mr = open_mr(stack.gitlab)
    workflow_id, description = await wait_review(stack, mr.iid)

    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert (await stack.client.get_workflow_handle(workflow_id).result())["status"] == "posted"
    assert len(inline_discussions(stack, mr.iid)) == 1
    summaries = [n for n in agent_notes(stack, mr.iid) if markers.parse(n["body"], markers.SUMMARY)]
    assert len(summaries) == 1 and "Adds div; one bug." in summaries[0]["body"]

    [created] = jobs_created(k8s, namespace)
    batch, core = apis(k8s)
    job = batch.read_namespaced_job(created.split("/")[1], namespace)
    assert job.metadata.labels["app.kubernetes.io/component"] == "agent-job"
    assert job.metadata.labels["gitlab-copilot-agent/kind"] == "review"
    assert job.metadata.annotations["gitlab-copilot-agent/run-id"].startswith(workflow_id)
    [pod] = core.list_namespaced_pod(namespace, label_selector=f"controller-uid={job.metadata.uid}").items
    assert pod.metadata.labels["app.kubernetes.io/component"] == "agent-job"  # the NetworkPolicy's selector
    # The canary: the worker's GitLab token, also in the Secret the clone step reads.
    canary = users.agent_token
    agent = pod.spec.containers[0]
    assert agent.name == "agent"
    for env in agent.env:
        assert env.value is None or canary not in env.value
        ref = env.value_from.secret_key_ref if env.value_from else None
        assert ref is None or ref.key != "GITLAB_TOKEN", env.name
    assert "GITLAB_TOKEN" not in {e.name for e in agent.env}
    pod_dir = k8s.work_dir / f"{namespace}_{pod.metadata.name}"
    assert (pod_dir / "vol-work" / "repo" / "app" / "calc.py").read_text() == NEW_CALC
    assert files_containing(pod_dir, canary) == []  # volumes (clone, .git/config), home, both logs
    assert canary not in core.read_namespaced_pod_log(pod.metadata.name, namespace, container="agent")


async def test_worker_killed_while_the_job_runs_reattaches_one_job_one_result(
    tmp_path, temporal_server, task_queue, gitlab, users, model, brain, temporal_client, k8s, namespace
):
    brain.brain = ScriptedBrain().when(
        finding("app/calc.py", 10, "Division by zero"), finish(), tool_offered="reviewer-finish_review"
    )
    settings = direct_settings(temporal_server, task_queue, gitlab, users, model, tmp_path, k8s, namespace)
    mr = open_mr(gitlab)
    pid, sha = gitlab.store.project("group/app").id, gitlab.mr_json("group/app", mr.iid)["sha"]
    workflow_id = review_id(pid, mr.iid, sha)
    model.requests.clear()
    model.stall_next(1, 3)  # the agent is mid-run in its Job when the worker dies
    worker = WorkerProcess(settings, log_file=tmp_path / "worker.log").start()
    try:
        await temporal_client.start_workflow(
            "ReviewMR",
            ReviewMRInput(project_id=pid, mr_iid=mr.iid, head_sha=sha),
            id=workflow_id,
            task_queue=task_queue,
            search_attributes=review_search_attributes(pid, mr.iid, sha, "manual"),
        )
        await wait_for(lambda: model.requests, timeout=60)
        worker.kill()
        worker.start()
        description = await wait_workflow(temporal_client, workflow_id, timeout=150)
    finally:
        worker.kill()

    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert len(jobs_created(k8s, namespace)) == 1  # re-attached, not doubled
    # One agent run: the Job's result was read, the agent was not asked again.
    assert agent_runs(model) == 1
    inline = [d for d in gitlab.discussions("group/app", mr.iid) if d["notes"][0].get("type") == "DiffNote"]
    assert len(inline) == 1
    summaries = [n for n in gitlab.notes("group/app", mr.iid) if markers.parse(n["body"], markers.SUMMARY)]
    assert len(summaries) == 1


async def test_cancelling_the_workflow_deletes_the_job_and_its_pod(stack, k8s, namespace):
    stack.model.brain.brain.when(finish(), tool_offered="reviewer-finish_review")
    stack.model.stall_next(1, 30)  # keeps the agent busy until the cancellation arrives
    mr = open_mr(stack.gitlab)
    mr_json = stack.gitlab.mr_json("group/app", mr.iid)
    pid, sha = stack.gitlab.store.project("group/app").id, mr_json["sha"]
    workflow_id = review_id(pid, mr.iid, sha)
    handle = await stack.client.start_workflow(
        "ReviewMR",
        ReviewMRInput(project_id=pid, mr_iid=mr.iid, head_sha=sha),
        id=workflow_id,
        task_queue=stack.settings.temporal_task_queue,
        search_attributes=review_search_attributes(pid, mr.iid, sha, "manual"),
    )
    batch, core = apis(k8s)

    def agent_running():
        pods = core.list_namespaced_pod(namespace).items
        statuses = [s for p in pods for s in (p.status.container_statuses or [])]
        return any(s.name == "agent" and s.state.running for s in statuses)

    await wait_for(agent_running, timeout=60)
    await handle.cancel()

    await wait_for(lambda: not batch.list_namespaced_job(namespace).items, timeout=30)
    await wait_for(lambda: not core.list_namespaced_pod(namespace).items, timeout=30)
    description = await wait_workflow(stack.client, workflow_id, timeout=30)
    assert description.status == WorkflowExecutionStatus.CANCELED
    assert len(jobs_created(k8s, namespace)) == 1
    deletes = [e for e in k8s.events if e.namespace == namespace and e.reason == "SuccessfulDelete"]
    assert len(deletes) == 1


# --- the executor on its own: re-attachment and failures ------------------------------------------
@pytest.fixture
def executor_settings(
    temporal_server, task_queue, gitlab, users, model, tmp_path, k8s, namespace
) -> Settings:
    return direct_settings(temporal_server, task_queue, gitlab, users, model, tmp_path, k8s, namespace)


async def test_a_second_attempt_reads_the_finished_jobs_result_without_a_new_job(
    executor_settings, gitlab, model, brain, k8s, namespace
):
    brain.brain = ScriptedBrain().when(
        finding("app/calc.py", 10, "Division by zero"),
        finish("One bug."),
        tool_offered="reviewer-finish_review",
    )
    task = review_task(gitlab, open_mr(gitlab).iid)
    run_id = f"review-{uuid.uuid4().hex}-7"
    model.requests.clear()

    first = await KubernetesExecutor(executor_settings).run(task, run_id=run_id)
    asked = len(model.completions())
    again = await KubernetesExecutor(executor_settings).run(task, run_id=run_id)

    assert again == first
    assert [r.title for r in first.reports if hasattr(r, "title")] == ["Division by zero"]
    assert first.scope is not None and first.scope.reviewed_files == ["app/calc.py"]
    assert len(model.completions()) == asked and agent_runs(model) == 1  # the agent ran once
    assert jobs_created(k8s, namespace) == [f"{namespace}/{job_name(run_id)}"]


FAULTS = [
    (
        Fault.IMAGE_PULL_ERROR,
        PermanentError,
        "ImagePullError",
        ["ImagePullBackOff", "could not pull its image"],
    ),
    (Fault.OOM_KILLED, PermanentError, "AgentJobOOMKilled", ["OOMKilled", "K8S_JOB_MEMORY_LIMIT"]),
    (
        Fault.DEADLINE_EXCEEDED,
        PermanentError,
        "AgentJobDeadlineExceeded",
        ["DeadlineExceeded", "K8S_JOB_TIMEOUT"],
    ),
    (Fault.UNSCHEDULABLE, AgentJobFailed, None, ["Unschedulable", "insufficient memory"]),
]


@pytest.mark.parametrize("fault, error, kind, phrases", FAULTS, ids=[f[0].value for f in FAULTS])
async def test_injected_failures_become_clear_errors_and_the_job_is_removed(
    executor_settings, gitlab, brain, k8s, namespace, fault, error, kind, phrases
):
    brain.brain = ScriptedBrain().when(finish(), tool_offered="reviewer-finish_review")
    task = review_task(gitlab, open_mr(gitlab).iid)
    run_id = f"review-{uuid.uuid4().hex}-3"
    k8s.inject(job_name(run_id), fault)

    with pytest.raises(error) as raised:
        await asyncio.wait_for(KubernetesExecutor(executor_settings).run(task, run_id=run_id), 60)

    message = str(raised.value)
    assert all(phrase in message for phrase in phrases), message
    if kind is not None:
        assert raised.value.kind == kind
    # Temporal's view: permanent errors are non-retryable, the rest retried by the policy.
    mapped = to_application_error(raised.value)
    assert getattr(mapped, "non_retryable", False) is (error is PermanentError)
    batch, core = apis(k8s)
    await wait_for(lambda: not batch.list_namespaced_job(namespace).items, timeout=15)
    await wait_for(lambda: not core.list_namespaced_pod(namespace).items, timeout=15)
    assert len(jobs_created(k8s, namespace)) == 1


async def test_an_agent_that_reports_nothing_fails_the_job_with_its_reason(
    executor_settings, gitlab, brain, k8s, namespace, users
):
    brain.brain = ScriptedBrain(default="I looked, no report.")
    task = review_task(gitlab, open_mr(gitlab).iid)
    run_id = f"review-{uuid.uuid4().hex}-1"

    with pytest.raises(AgentJobFailed) as raised:
        await asyncio.wait_for(KubernetesExecutor(executor_settings).run(task, run_id=run_id), 90)

    assert "finished without calling finish_review" in str(raised.value)
    assert users.agent_token not in str(raised.value)
    batch, _ = apis(k8s)
    await wait_for(lambda: not batch.list_namespaced_job(namespace).items, timeout=15)


async def test_without_a_secret_name_the_run_is_refused(executor_settings, gitlab, k8s, namespace):
    settings = executor_settings.model_copy(update={"k8s_secret_name": ""})
    with pytest.raises(ValueError, match="K8S_SECRET_NAME"):
        await KubernetesExecutor(settings).run(review_task(gitlab, open_mr(gitlab).iid), run_id="review-x-1")
    assert jobs_created(k8s, namespace) == []


async def test_an_implementation_runs_in_a_job_and_returns_its_patch_and_test_evidence(
    executor_settings, gitlab, brain, k8s, namespace
):
    gitlab.create_project("group/svc", {"calc.py": "x = 1\n", ".test-id": uuid.uuid4().hex})
    gitlab.commit("group/svc", "main", {"tests/__init__.py": ""}, "tests package")
    brain.brain = ScriptedBrain().when(
        *agent_writes(
            {"mul.py": "def mul(a, b):\n    return a * b\n", "tests/test_mul.py": MUL_TEST},
            summary="Added `mul` with a unit test.",
            subject="add mul",
        ),
        tool_offered="implementer-report_implementation",
    )
    task = ImplementTask(
        repo=RepoRef(
            clone_url=f"{gitlab.url}/group/svc.git",
            head_sha=gitlab.branch_sha("group/svc", "main"),
            branches=["main"],
        ),
        project_path="group/svc",
        issue_key="KUBE-1",
        summary="Add multiplication",
        test_command="python3 -m unittest",
    )

    result = await asyncio.wait_for(
        KubernetesExecutor(executor_settings).run(task, run_id=f"implement-KUBE-1-{uuid.uuid4().hex}"), 120
    )

    assert result.kind == "implement" and result.patch is not None
    assert "+def mul(a, b):" in result.patch and "tests/test_mul.py" in result.patch
    assert result.tests is not None and result.tests.ran and result.tests.exit_code == 0
    assert len(jobs_created(k8s, namespace)) == 1


# --- host paths are not container paths ------------------------------------------------------------
def checkout_under_tmp() -> Path:
    """A copy of this checkout under /tmp (the code, as a fresh clone holds it), with the installed
    venv, node_modules and CLI cache linked in, as `make setup` would have made them."""
    checkout = Path(tempfile.mkdtemp(prefix="clone-", dir="/tmp"))  # noqa: S108 - the point of the test
    heavy = (".venv", "node_modules", ".data", ".git", "__pycache__", ".pytest_cache", ".ruff_cache")
    shutil.copytree(REPO_ROOT, checkout, ignore=shutil.ignore_patterns(*heavy), dirs_exist_ok=True)
    for name in (".venv", "node_modules"):
        (checkout / name).symlink_to(REPO_ROOT / name)
    (checkout / ".data").mkdir()
    (checkout / ".data" / "copilot-cache").symlink_to(REPO_ROOT / ".data" / "copilot-cache")
    return checkout


async def test_the_executor_runs_from_a_checkout_under_tmp(executor_settings, gitlab, brain, users):
    """The pod mounts a volume at /tmp; the checkout's own paths under /tmp (its python, its code,
    the CLI cache) are the image's files and must reach the containers unchanged."""
    brain.brain = ScriptedBrain().when(
        finding("app/calc.py", 10, "Division by zero"),
        finish("One bug."),
        tool_offered="reviewer-finish_review",
    )
    checkout = checkout_under_tmp()
    try:
        with KubernetesStandin(image_paths=[checkout]) as standin:
            namespace = f"t-{uuid.uuid4().hex[:12]}"
            standin.add_secret(namespace, SECRET, {"GITLAB_TOKEN": users.agent_token})
            settings = executor_settings.model_copy(
                update={
                    **k8s_settings(standin, namespace),
                    "k8s_job_python": str(checkout / ".venv" / "bin" / Path(sys.executable).name),
                    "k8s_job_workdir": str(checkout),
                    "copilot_cache_dir": str(checkout / ".data" / "copilot-cache"),
                }
            )
            task = review_task(gitlab, open_mr(gitlab).iid)
            result = await asyncio.wait_for(
                KubernetesExecutor(settings).run(task, run_id=f"review-{uuid.uuid4().hex}-1"), 90
            )
            [pod_dir] = [p for p in standin.work_dir.iterdir() if p.name.startswith(f"{namespace}_")]
            clone_log = (pod_dir / "logs" / "clone.log").read_text()
    finally:
        shutil.rmtree(checkout, ignore_errors=True)

    assert [r.title for r in result.reports if hasattr(r, "title")] == ["Division by zero"]
    assert "checked out" in clone_log
