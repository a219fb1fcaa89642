"""The agent Job's spec and its two channels (task in, result out), without a cluster."""

from __future__ import annotations

import base64
import gzip
import json
import random
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes.client import ApiClient

from contracts.settings import REPO_ROOT, Settings
from executors import k8s_channel
from executors.k8s_channel import (
    MAX_RESULT_BYTES,
    ChannelError,
    ResultTooLarge,
    decode_task,
    encode_task,
    error_frame,
    parse_result,
    read_frame,
    result_frame,
)
from executors.k8s_spec import build_job, job_name, label_value
from executors.report_tool import FinishReview
from executors.tasks import AgentResult, PriorThread, RepoRef, ReviewTask

CANARY = "glpat-canary-0123456789"
SHA = "a" * 40


def settings(**overrides) -> Settings:
    values = {
        "gitlab_token": CANARY,
        "copilot_provider_type": "openai",
        "copilot_provider_base_url": "http://model.example/v1",
        "copilot_provider_api_key": "sk-provider-key",
        "k8s_secret_name": "agent-secrets",
        **overrides,
    }
    return Settings(_env_file=None, **values)


def task(**overrides) -> ReviewTask:
    values = {
        "repo": RepoRef(clone_url="https://gitlab.example/group/app.git", head_sha=SHA, branches=["main"]),
        "project_path": "Group/Sub Group/app",
        "mr_iid": 7,
        "title": "Add div",
        "base_sha": "b" * 40,
        **overrides,
    }
    return ReviewTask(**values)


def job_dict(run_id: str = "review-1-7-" + SHA + "-3", **setting_overrides) -> dict:
    job = build_job(
        task(),
        settings(**setting_overrides),
        run_id=run_id,
        image="registry.example/gca:1.0",
        namespace="agents",
        traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01",
    )
    return ApiClient().sanitize_for_serialization(job)


def containers(job: dict) -> dict[str, dict]:
    spec = job["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["initContainers"] + spec["containers"]}


# --- the spec ----------------------------------------------------------------------------------
def kubernetes_validate(tmp_path, job: dict) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    cli = REPO_ROOT / ".venv" / "bin" / "kubernetes-validate"
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "kubernetes_validate"]
    return subprocess.run(
        [*command, "--strict", "-k", "1.32.0", str(path)], capture_output=True, text=True, timeout=60
    )


def test_job_passes_kubernetes_validate_strict(tmp_path) -> None:
    result = kubernetes_validate(tmp_path, job_dict())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed for resource job/" in result.stdout


def test_kubernetes_validate_strict_would_catch_a_stray_field(tmp_path) -> None:
    job = job_dict()
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    assert kubernetes_validate(tmp_path, job).returncode != 0


def test_job_has_the_issue_7_shape() -> None:
    job = job_dict(k8s_job_timeout=1234, k8s_job_ttl=77, k8s_job_memory_limit="3Gi")
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (
        0,
        1234,
        77,
    )
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {v["name"]: v for v in pod["volumes"]} == {
        "work": {"name": "work", "emptyDir": {}},
        "tmp": {"name": "tmp", "emptyDir": {}},
    }
    for container in containers(job).values():
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["runAsUser"] == 1000
        assert container["resources"]["limits"] == {"cpu": "1", "memory": "3Gi"}
        assert container["image"] == "registry.example/gca:1.0"
        assert container["workingDir"] == "/app"  # the Dockerfile's WORKDIR
        assert container["command"][:2] == ["python", "-m"]


def test_labels_select_the_network_policy_and_identify_the_run() -> None:
    job = job_dict()
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/name"] == "gitlab-copilot-agent"
        assert labels["app.kubernetes.io/component"] == "agent-job"
        assert labels["gitlab-copilot-agent/kind"] == "review"
        assert labels["gitlab-copilot-agent/project"] == "Group-Sub-Group-app"
        assert all(
            len(v) <= 63 and re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", v)
            for v in labels.values()
        )
    assert job["metadata"]["annotations"]["gitlab-copilot-agent/project"] == "Group/Sub Group/app"


@pytest.mark.parametrize(
    "run_id",
    ["review-1-7-" + SHA + "-1", "x" * 300, "--Weird__ID..//with spaces--", "implement-PROJ-12-1", "-"],
)
def test_job_name_is_dns_1123_short_and_deterministic(run_id: str) -> None:
    name = job_name(run_id)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63
    assert job_name(run_id) == name


def test_long_run_ids_with_a_common_prefix_get_different_names() -> None:
    prefix = "review-123-45-" + SHA
    assert job_name(prefix + "-activity-1") != job_name(prefix + "-activity-2")


@pytest.mark.parametrize("text", ["a/b c", "é" * 80, "_x_", "ok.value-1", "x" * 64])
def test_label_values_are_sanitised(text: str) -> None:
    value = label_value(text)
    assert len(value) <= 63
    assert value == "" or re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value)


def test_only_the_clone_step_gets_the_gitlab_token_and_only_by_reference() -> None:
    job = job_dict()
    assert CANARY not in json.dumps(job)
    clone, agent = containers(job)["clone"], containers(job)["agent"]
    token = [e for e in clone["env"] if e["name"] == "GITLAB_TOKEN"]
    assert token == [
        {
            "name": "GITLAB_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "agent-secrets", "key": "GITLAB_TOKEN"}},
        }
    ]
    agent_env = {e["name"]: e for e in agent["env"]}
    assert "GITLAB_TOKEN" not in agent_env and "GITHUB_TOKEN" not in agent_env
    assert (
        agent_env["COPILOT_PROVIDER_API_KEY"]["valueFrom"]["secretKeyRef"]["key"]
        == "COPILOT_PROVIDER_API_KEY"
    )
    assert agent_env["COPILOT_PROVIDER_BASE_URL"]["value"] == "http://model.example/v1"
    assert agent_env["TRACEPARENT"]["value"].startswith("00-")
    assert "sk-provider-key" not in json.dumps(job)


def test_without_byok_the_agent_gets_the_github_token_by_reference() -> None:
    job = job_dict(copilot_provider_base_url="", copilot_provider_type="", github_token="ghp_x")
    agent_env = {e["name"]: e for e in containers(job)["agent"]["env"]}
    assert agent_env["GITHUB_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "agent-secrets",
        "key": "GITHUB_TOKEN",
    }
    assert "COPILOT_PROVIDER_API_KEY" not in agent_env and "ghp_x" not in json.dumps(job)


def test_stand_in_settings_reach_the_command_and_working_directory() -> None:
    job = job_dict(k8s_job_python="/opt/venv/bin/python", k8s_job_workdir="/srv/app")
    agent = containers(job)["agent"]
    assert agent["command"] == [
        "/opt/venv/bin/python",
        "-m",
        "executors.job_runner",
        "--repo",
        "/workspace/repo",
    ]
    assert agent["workingDir"] == "/srv/app"


# --- the task channel ---------------------------------------------------------------------------
def test_task_round_trips_through_the_environment_variable() -> None:
    original = task(description="ünïcode " * 100)
    assert decode_task(encode_task(original)) == original


def test_an_oversized_task_is_a_clear_error_before_any_job_exists() -> None:
    noisy = base64.b64encode(random.Random(7).randbytes(150_000)).decode()  # incompressible
    threads = [PriorThread(thread_id=str(i), body=noisy[i * 2000 : (i + 1) * 2000]) for i in range(100)]
    huge = task(description=noisy[:20_000], prior_threads=threads)
    with pytest.raises(ValueError, match="agent task too large for a Job"):
        encode_task(huge)


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "not a valid agent task"),
        ("!!!not-base64", "not base64 gzip"),
        (base64.b64encode(b"plain, not gzip").decode(), "not base64 gzip"),
        (base64.b64encode(gzip.compress(b"[1, 2]")).decode(), "not a valid agent task"),
        (base64.b64encode(gzip.compress(b"0" * (5 * 1024 * 1024))).decode(), "inflates to more than"),
        ("A" * (k8s_channel.MAX_TASK_ENV_BYTES + 1), "is over"),
    ],
)
def test_hostile_task_values_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_task(value)


# --- the result channel -------------------------------------------------------------------------
def result() -> AgentResult:
    return AgentResult(kind="review", reports=[FinishReview(summary="Fine — ünïcode")], final_message="done")


def test_result_frame_round_trips_after_other_log_lines() -> None:
    log = "WARNING something\n" + result_frame(result())
    assert parse_result(read_frame(log)) == result()


def test_the_last_frame_wins() -> None:
    log = error_frame("AgentFailed", "first") + result_frame(result())
    assert read_frame(log).status == "ok"


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda f: f.replace("Fine", "Fire"), "sha256"),
        (lambda f: f[: len(f) // 2], "incomplete"),
        (lambda f: "no frame here\n", "no result frame"),
        (lambda f: re.sub(r"bytes=\d+", "bytes=99999999999", f), "over the"),
    ],
)
def test_a_damaged_frame_is_refused_not_trusted(mangle, message: str) -> None:
    with pytest.raises(ChannelError, match=message):
        read_frame(mangle(result_frame(result())))


def test_an_oversized_result_is_refused_never_truncated() -> None:
    big = AgentResult(kind="implement", patch="x" * (MAX_RESULT_BYTES + 1))
    with pytest.raises(ResultTooLarge, match="exceeds the"):
        result_frame(big)


def test_error_frames_carry_type_and_bounded_message() -> None:
    frame = read_frame(error_frame("AgentNoResult", "m" * 10_000))
    assert frame.status == "error" and frame.payload["type"] == "AgentNoResult"
    assert len(frame.payload["message"]) == 4000


# --- the two container entrypoints, as processes ------------------------------------------------
def run_module(module: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_runner_answers_a_malformed_task_with_a_value_error_frame(tmp_path) -> None:
    done = run_module(
        "executors.job_runner",
        ["--repo", str(tmp_path)],
        {"AGENT_TASK": "%%%", "COPILOT_PROVIDER_API_KEY": "sk-secret-in-runner"},
    )
    assert done.returncode == 1
    frame = read_frame(done.stdout)
    assert frame.status == "error" and frame.payload["type"] == "ValueError"
    assert "AGENT_TASK is not base64 gzip" in frame.payload["message"]


def test_clone_step_refuses_a_malformed_repository_reference(tmp_path) -> None:
    done = run_module("executors.clone_step", ["--dest", str(tmp_path / "repo")], {"CLONE_REPO": "{}"})
    assert done.returncode == 1
    assert "CLONE_REPO is not a valid repository reference" in done.stdout


class _Unavailable(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_clone_step_reports_a_503_as_transient_without_the_token(tmp_path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/group/app.git"
    ref = RepoRef(clone_url=url, head_sha=SHA, branches=["main"])
    done = run_module(
        "executors.clone_step",
        ["--dest", str(tmp_path / "repo")],
        {"CLONE_REPO": ref.model_dump_json(), "GITLAB_TOKEN": CANARY},
    )
    server.shutdown()
    assert done.returncode == 75, done.stdout + done.stderr
    assert "clone step: git fetch failed" in done.stdout and "503" in done.stdout
    assert CANARY not in done.stdout + done.stderr
