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
from executors import job_keys, k8s_channel
from executors.job_keys import JobKeys
from executors.k8s_channel import (
    MAX_RESULT_BYTES,
    ChannelError,
    ResultTooLarge,
    decode_task,
    encode_task,
    error_payload,
    parse_result,
    read_frame,
    read_result_file,
    result_payload,
    signed_frame,
    write_result,
)
from executors.k8s_spec import build_job, job_name, label_value
from executors.report_tool import FinishReview
from executors.tasks import AgentResult, ImplementTask, PriorThread, RepoRef, ReviewTask

CANARY = "glpat-canary-0123456789"
SHA = "a" * 40
KEYS = JobKeys(b"unit-test-job-key-0123456789")
NOW = 1_800_000_000


def settings(**overrides) -> Settings:
    values = {
        "gitlab_token": CANARY,
        "copilot_provider_type": "openai",
        "copilot_provider_base_url": "http://model.example/v1",
        "copilot_provider_api_key": "sk-provider-key",
        "k8s_proxy_url": "http://gca-job-proxy.agents.svc:8081",
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
        keys=KEYS,
        now=NOW,
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


def implement_job_dict() -> dict:
    implement = ImplementTask(
        repo=RepoRef(clone_url="https://gitlab.example/g/app.git", head_sha=SHA, branches=["main"]),
        project_path="g/app",
        issue_key="KEY-1",
        summary="Add mul",
        test_command="make check",
    )
    job = build_job(
        implement,
        settings(),
        run_id="implement-KEY-1-1",
        image="registry.example/gca:1.0",
        namespace="agents",
        traceparent=None,
        keys=KEYS,
        now=NOW,
    )
    return ApiClient().sanitize_for_serialization(job)


def test_an_implement_job_measures_the_tests_where_the_agent_cannot_reach(tmp_path) -> None:
    job = implement_job_dict()
    assert kubernetes_validate(tmp_path, job).returncode == 0
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["clone", "agent", "tests"]
    assert all(v["emptyDir"].get("sizeLimit") for v in pod["volumes"])
    by_name = containers(job)
    mounts = {
        name: {m["name"]: m.get("readOnly", False) for m in c["volumeMounts"]} for name, c in by_name.items()
    }
    assert mounts["clone"] == {"work": False, "tmp": False, "pristine": False}
    assert "pristine" not in mounts["agent"] and "evidence" not in mounts["agent"]
    assert mounts["tests"] == {"pristine": False, "tests-tmp": False, "result": True, "evidence": False}
    assert mounts["result"] == {"evidence": True}  # it signs what `tests` wrote, not the agent's file
    assert by_name["result"]["command"][-2:] == ["--in", "/evidence/result.json"]
    assert "--pristine" in by_name["clone"]["command"]
    tests_env = {e["name"]: e["value"] for e in by_name["tests"]["env"]}
    assert tests_env["TESTS_COMMAND"] == "make check" and tests_env["TESTS_BASE_SHA"] == SHA
    assert tests_env["TESTS_BASE_NAME"] == "target branch main"
    assert set(tests_env) == {
        "HOME",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        *(n for n in tests_env if n.startswith("TESTS_")),
    }
    assert not any(job_keys.PREFIX in v for v in tests_env.values())  # no lease, no key, no model address


def test_a_review_job_has_no_tests_container() -> None:
    pod = job_dict()["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["clone", "agent"]
    assert {v["name"] for v in pod["volumes"]} == {"work", "tmp", "result"}


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
        "work": {"name": "work", "emptyDir": {"sizeLimit": "4Gi"}},
        "tmp": {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        "result": {"name": "result", "emptyDir": {"sizeLimit": "16Mi"}},
    }
    assert [c["name"] for c in pod["initContainers"]] == ["clone", "agent"]  # one after the other,
    assert [c["name"] for c in pod["containers"]] == ["result"]  # then the result container
    for name, container in containers(job).items():
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["runAsUser"] == (1001 if name == "result" else 1000)
        if name != "result":
            assert container["resources"]["limits"] == {"cpu": "1", "memory": "3Gi"}
        assert container["image"] == "registry.example/gca:1.0"
        assert container["workingDir"] == "/app"  # the Dockerfile's WORKDIR
        assert container["command"][:2] == ["python", "-m"]
    result_mounts = containers(job)["result"]["volumeMounts"]
    assert result_mounts == [{"name": "result", "mountPath": "/result", "readOnly": True}]


def test_every_empty_dir_has_a_size_limit() -> None:
    job = job_dict(k8s_job_work_size_limit="9Gi", k8s_job_tmp_size_limit="300Mi")
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert all(v["emptyDir"].get("sizeLimit") for v in volumes)
    assert {v["name"]: v["emptyDir"]["sizeLimit"] for v in volumes}["work"] == "9Gi"


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


def test_the_job_holds_no_credential_only_leases_and_its_result_key() -> None:
    job = job_dict(github_token="ghp_canary_github", k8s_job_key="worker-job-key-canary-0123")
    text = json.dumps(job)
    for canary in (CANARY, "sk-provider-key", "ghp_canary_github", "worker-job-key-canary-0123"):
        assert canary not in text
    assert "secretKeyRef" not in text and "envFrom" not in text
    env = {name: {e["name"]: e.get("value") for e in c["env"]} for name, c in containers(job).items()}
    name = job["metadata"]["name"]
    git = KEYS.verify(env["clone"]["CLONE_TOKEN"], "git", now=NOW)
    assert git is not None and git.job == name and git.repo == "https://gitlab.example/group/app.git"
    assert json.loads(env["clone"]["CLONE_REPO"])["clone_url"] == (
        "http://gca-job-proxy.agents.svc:8081/git/group/app.git"
    )
    model = KEYS.verify(env["agent"]["COPILOT_PROVIDER_API_KEY"], "model", now=NOW)
    assert model is not None and model.job == name
    assert env["agent"]["COPILOT_PROVIDER_BASE_URL"] == "http://gca-job-proxy.agents.svc:8081/p"
    assert env["agent"]["TRACEPARENT"].startswith("00-")
    # The result key: only in the result container, and only this Job's.
    assert env["result"]["JOB_RESULT_KEY"] == KEYS.result_key(name)
    assert all("JOB_RESULT_KEY" not in env[c] for c in ("clone", "agent"))
    assert KEYS.result_key(name) != KEYS.result_key(name + "x")


def test_leases_expire_after_the_jobs_deadline_and_are_scoped() -> None:
    job = job_dict(k8s_job_timeout=900, k8s_job_pending_timeout=300)
    env = {e["name"]: e.get("value") for e in containers(job)["agent"]["env"]}
    lease = env["COPILOT_PROVIDER_API_KEY"]
    assert KEYS.verify(lease, "model", now=NOW + 900 + 300) is not None
    assert KEYS.verify(lease, "model", now=NOW + 900 + 300 + 301) is None  # deadline + margin, no more
    assert KEYS.verify(lease, "git", now=NOW) is None  # a model lease clones nothing
    assert JobKeys(b"another-workers-key-000").verify(lease, "model", now=NOW) is None
    claims = lease.split(".")[1]
    forged = (
        base64.urlsafe_b64encode(
            json.dumps(
                {
                    "job": "x",
                    "scope": "git",
                    "repo": "https://gitlab.example/secret/payments.git",
                    "exp": 2**40,
                }
            ).encode()
        )
        .decode()
        .rstrip("=")
    )
    assert KEYS.verify(lease.replace(claims, forged), "git", now=NOW) is None
    assert KEYS.verify("joblease.bad", "model") is None and KEYS.verify("", "model") is None


def test_stand_in_settings_reach_the_command_and_working_directory() -> None:
    job = job_dict(k8s_job_python="/opt/venv/bin/python", k8s_job_workdir="/srv/app")
    agent = containers(job)["agent"]
    assert agent["command"] == [
        "/opt/venv/bin/python",
        "-m",
        "executors.job_runner",
        "--repo",
        "/workspace/repo",
        "--out",
        "/result/result.json",
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
        (base64.b64encode(gzip.compress(b"[1, 2]", mtime=0)).decode(), "not a valid agent task"),
        (base64.b64encode(gzip.compress(b"0" * (5 * 1024 * 1024))).decode(), "inflates to more than"),
        ("A" * (k8s_channel.MAX_TASK_ENV_BYTES + 1), "is over"),
    ],
)
def test_hostile_task_values_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_task(value)


# --- the result channel -------------------------------------------------------------------------
RESULT_KEY = KEYS.result_key("review-job")


def result() -> AgentResult:
    return AgentResult(kind="review", reports=[FinishReview(summary="Fine — ünïcode")], final_message="done")


def frame_of(outcome: dict, key: str = RESULT_KEY) -> str:
    return signed_frame(outcome["status"], json.dumps(outcome["payload"]).encode(), key)


def test_result_frame_round_trips_after_other_log_lines() -> None:
    log = "WARNING something\n" + frame_of(result_payload(result()))
    assert parse_result(read_frame(log, RESULT_KEY)) == result()


def test_exactly_one_frame_is_accepted_a_second_one_fails_clearly() -> None:
    genuine = frame_of(result_payload(result()))
    for log in (genuine + genuine, frame_of(error_payload("AgentFailed", "first")) + genuine):
        with pytest.raises(ChannelError, match="holds 2 frames; exactly one is accepted"):
            read_frame(log, RESULT_KEY)


def test_a_frame_without_the_jobs_signature_is_refused() -> None:
    genuine = frame_of(result_payload(result()))
    unsigned = re.sub(r" hmac=[0-9a-f]{64}", "", genuine)  # the old, unauthenticated format
    with pytest.raises(ChannelError, match="malformed or unsigned"):
        read_frame(unsigned, RESULT_KEY)
    other_job = frame_of(result_payload(result()), KEYS.result_key("another-job"))
    with pytest.raises(ChannelError, match="signature check"):
        read_frame(other_job, RESULT_KEY)
    zeros = re.sub(r"hmac=[0-9a-f]{64}", "hmac=" + "0" * 64, genuine)
    with pytest.raises(ChannelError, match="signature check"):
        read_frame(zeros, RESULT_KEY)


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda f: re.sub(r"\n(.)", lambda m: "\n" + ("B" if m[1] == "A" else "A"), f, count=1), "sha256"),
        (lambda f: f[: len(f) // 2], "incomplete"),
        (lambda f: "no frame here\n", "no result frame"),
        (lambda f: re.sub(r"bytes=\d+", "bytes=99999999999", f), "over the"),
    ],
)
def test_a_damaged_frame_is_refused_not_trusted(mangle, message: str) -> None:
    with pytest.raises(ChannelError, match=message):
        read_frame(mangle(frame_of(result_payload(result()))), RESULT_KEY)


def test_an_oversized_result_is_refused_never_truncated() -> None:
    big = AgentResult(kind="implement", patch="x" * (MAX_RESULT_BYTES + 1))
    with pytest.raises(ResultTooLarge, match="exceeds the"):
        result_payload(big)


def test_the_frame_in_the_pod_log_carries_no_finding_or_patch_in_the_clear() -> None:
    secret_patch = AgentResult(kind="implement", patch="+PATCH-CANARY-4711\n", final_message="FINDING-CANARY")
    frame = frame_of(result_payload(secret_patch))
    assert "CANARY" not in frame and "patch" not in frame  # what a cluster log collector ships
    assert parse_result(read_frame(frame, RESULT_KEY)) == secret_patch


def test_a_frame_signed_right_but_sealed_for_another_job_does_not_open() -> None:
    # The attacker's best case: the HMAC verifies (they hold the key) but the seal was altered.
    genuine = frame_of(result_payload(result()))
    header, sealed, footer = genuine.split("\n", 2)
    raw = bytearray(base64.b64decode(sealed))
    raw[-1] ^= 1
    resealed = base64.b64encode(bytes(raw))
    forged = signed_frame_raw("ok", resealed, RESULT_KEY) + footer.split("\n", 1)[1]
    with pytest.raises(ChannelError, match="does not open"):
        read_frame(forged, RESULT_KEY)


def signed_frame_raw(status: str, sealed: bytes, key: str) -> str:
    import hashlib
    import hmac as hmac_lib

    mac = hmac_lib.new(key.encode(), status.encode() + b"\n" + sealed, hashlib.sha256).hexdigest()
    digest = hashlib.sha256(sealed).hexdigest()
    return (
        f"===== BEGIN AGENT RESULT status={status} bytes={len(sealed)} sha256={digest} hmac={mac} =====\n"
        f"{sealed.decode()}\n===== END AGENT RESULT =====\n"
    )


def test_error_results_carry_type_and_bounded_message() -> None:
    frame = read_frame(frame_of(error_payload("AgentNoResult", "m" * 10_000)), RESULT_KEY)
    assert frame.status == "error" and frame.payload["type"] == "AgentNoResult"
    assert len(frame.payload["message"]) == 4000


def test_the_result_file_is_read_safely(tmp_path) -> None:
    path = tmp_path / "result.json"
    write_result(path, result_payload(result()))
    status, payload = read_result_file(path)
    assert status == "ok" and AgentResult.model_validate_json(payload) == result()
    (tmp_path / "secret").write_text('{"status": "ok", "payload": {}}')
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "secret")  # e.g. to /proc/self/environ of the result container
    with pytest.raises(ChannelError, match="no result file"):
        read_result_file(link)
    with pytest.raises(ChannelError, match="no result file"):
        read_result_file(tmp_path / "missing.json")
    (tmp_path / "shape.json").write_text("[1]")
    with pytest.raises(ChannelError, match="result shape"):
        read_result_file(tmp_path / "shape.json")


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


def test_runner_answers_a_malformed_task_with_a_value_error_result(tmp_path) -> None:
    out = tmp_path / "result.json"
    done = run_module(
        "executors.job_runner",
        ["--repo", str(tmp_path), "--out", str(out)],
        {"AGENT_TASK": "%%%", "COPILOT_PROVIDER_API_KEY": "sk-secret-in-runner"},
    )
    assert done.returncode == 0, done.stderr  # the result container runs next and signs the error
    assert "BEGIN AGENT RESULT" not in done.stdout  # the runner never prints a frame
    status, payload = read_result_file(out)
    assert status == "error" and json.loads(payload)["type"] == "ValueError"
    assert "AGENT_TASK is not base64 gzip" in json.loads(payload)["message"]


def test_result_container_prints_one_signed_frame_and_drops_its_key(tmp_path) -> None:
    out = tmp_path / "result.json"
    write_result(out, result_payload(result()))
    done = run_module("executors.job_result", ["--in", str(out)], {"JOB_RESULT_KEY": RESULT_KEY})
    assert done.returncode == 0 and parse_result(read_frame(done.stdout, RESULT_KEY)) == result()
    assert RESULT_KEY not in done.stdout + done.stderr

    missing = run_module(
        "executors.job_result", ["--in", str(tmp_path / "none.json")], {"JOB_RESULT_KEY": RESULT_KEY}
    )
    frame = read_frame(missing.stdout, RESULT_KEY)
    assert frame.status == "error" and frame.payload["type"] == "AgentNoResult"
    assert run_module("executors.job_result", ["--in", str(out)], {}).returncode == 1  # no key, no frame


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
        {"CLONE_REPO": ref.model_dump_json(), "CLONE_TOKEN": CANARY},
    )
    server.shutdown()
    assert done.returncode == 75, done.stdout + done.stderr
    assert "clone step: git fetch failed" in done.stdout and "503" in done.stdout
    assert CANARY not in done.stdout + done.stderr


def test_workers_agree_on_the_job_key_without_configuration() -> None:
    """Derived from the GitLab token every replica holds: a replica (or the worker replacing a
    crashed one) verifies what another issued; K8S_JOB_KEY overrides it."""
    lease = JobKeys.from_settings(settings()).lease("job", "model", expires=NOW + 60)
    assert JobKeys.from_settings(settings()).verify(lease, "model", now=NOW) is not None
    assert JobKeys.from_settings(settings(gitlab_token="glpat-other")).verify(lease, "model", now=NOW) is None
    explicit = JobKeys.from_settings(settings(k8s_job_key="explicit-key-0123456789"))
    assert explicit.verify(lease, "model", now=NOW) is None
    assert CANARY not in lease


def test_the_job_builds_the_prompt_with_the_workers_persona_settings() -> None:
    job = job_dict(review_system_prompt="You are ACME's reviewer.", system_prompt_suffix="Be brief.")
    env = {e["name"]: e.get("value") for e in containers(job)["agent"]["env"]}
    assert env["REVIEW_SYSTEM_PROMPT"] == "You are ACME's reviewer."
    assert env["SYSTEM_PROMPT_SUFFIX"] == "Be brief."
    assert env["COPILOT_FOLLOW_UPS"] == "2"
    assert "SYSTEM_PROMPT" not in env  # empty values are left out
