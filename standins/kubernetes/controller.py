"""The Job controller: turns an admitted Job into pods, retries within `backoffLimit`, enforces
`activeDeadlineSeconds` and `ttlSecondsAfterFinished`, and carries out deletion policies.

Retries follow the real controller's accounting but without its exponential back-off delay (10 s,
20 s, ...), so tests with `backoffLimit > 0` stay fast.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from standins.kubernetes.faults import Fault
from standins.kubernetes.meta import now
from standins.kubernetes.pod_runner import Outcome, PodRunner
from standins.kubernetes.status import ApiError, not_found, success
from standins.kubernetes.store import Store

_log = logging.getLogger(__name__)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API server's generateName alphabet


def random_suffix() -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def _condition(kind: str, reason: str, message: str) -> dict[str, Any]:
    timestamp = now()
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": timestamp,
        "lastTransitionTime": timestamp,
    }


@dataclass
class JobRun:
    namespace: str
    name: str
    uid: str
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str | None = None  # "deadline" | "deleted" | "orphaned" | "shutdown"
    pods: list[PodRunner] = field(default_factory=list)
    timers: list[threading.Timer] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop.set()


class JobController:
    def __init__(
        self,
        store: Store,
        work_dir: Path,
        base_env: Mapping[str, str],
        fault_for: Callable[[dict[str, Any]], Fault | None],
        pull_backoff_after: float,
        image_paths: tuple[str, ...] = (),
    ) -> None:
        self._store = store
        self._image_paths = image_paths
        self._work_dir = work_dir
        self._base_env = dict(base_env)
        self._fault_for = fault_for
        self._pull_backoff_after = pull_backoff_after
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], JobRun] = {}
        self._every_run: list[JobRun] = []
        self._pods: dict[tuple[str, str], PodRunner] = {}

    # --- creation -----------------------------------------------------------------------------

    def create(self, job: dict[str, Any]) -> dict[str, Any]:
        """Store an admitted Job (filling in what the API server fills in) and start running it."""
        metadata = job["metadata"]
        if not metadata.get("name"):
            metadata["name"] = metadata.pop("generateName") + random_suffix()
        metadata.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        selector_labels = {
            "batch.kubernetes.io/controller-uid": metadata["uid"],
            "batch.kubernetes.io/job-name": metadata["name"],
            "controller-uid": metadata["uid"],
            "job-name": metadata["name"],
        }
        template = job["spec"]["template"]
        template.setdefault("metadata", {}).setdefault("labels", {}).update(selector_labels)
        metadata.setdefault("labels", dict(template["metadata"]["labels"]))
        job["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": metadata["uid"]}}
        job["status"] = {}
        created = self._store.create("jobs", job, "batch")
        run = JobRun(metadata["namespace"], metadata["name"], metadata["uid"])
        with self._lock:
            self._jobs[(run.namespace, run.name)] = run
            self._every_run.append(run)
        threading.Thread(target=self._run, args=(run, job), name=f"job-{run.name}", daemon=True).start()
        return created

    def _update_job(self, run: JobRun, **status: Any) -> None:
        self._add_conditions(run, **status)

    def _add_conditions(self, run: JobRun, *conditions: dict[str, Any], **status: Any) -> None:
        def apply(job: dict[str, Any]) -> None:
            job["status"].setdefault("conditions", []).extend(conditions)
            job["status"].update(status)

        # The uid guard keeps an orphaned Job's controller away from a new Job of the same name.
        self._store.update("jobs", run.namespace, run.name, apply, uid=run.uid)

    # --- the controller loop, one thread per Job ----------------------------------------------

    def _run(self, run: JobRun, job: dict[str, Any]) -> None:
        try:
            self._drive(run, job)
        except Exception:
            _log.exception("job controller failed for %s/%s", run.namespace, run.name)
            self._store.note("Job", run.namespace, run.name, "InternalError", "stand-in controller failed")
        finally:
            run.finished.set()

    def _drive(self, run: JobRun, job: dict[str, Any]) -> None:
        spec = job["spec"]
        fault = self._fault_for(job)
        self._update_job(run, startTime=now(), active=0, ready=0, terminating=0, uncountedTerminatedPods={})
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None:
            self._start_timer(run, deadline, lambda: run.request_stop("deadline"))
        failures = 0
        stopped: PodRunner | None = None
        while not run.stop.is_set():
            pod = self._create_pod(run, job, fault)
            if fault is Fault.DEADLINE_EXCEEDED:
                run.request_stop("deadline")
            outcome = pod.run()
            if run.stop_reason == "orphaned":
                return
            if outcome is Outcome.SUCCEEDED:
                self._store.note("Job", run.namespace, run.name, "Completed", "Job completed")
                self._add_conditions(
                    run,
                    _condition(
                        "SuccessCriteriaMet",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                    ),
                    _condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
                    active=0,
                    ready=0,
                    succeeded=1,
                    completionTime=now(),
                )
                self._after_finish(run, spec)
                return
            if outcome is Outcome.STOPPED:
                stopped = pod
                break
            failures += 1
            self._update_job(run, active=0, ready=0, failed=failures)
            if failures > spec["backoffLimit"]:
                message = "Job has reached the specified backoff limit"
                self._store.note("Job", run.namespace, run.name, "BackoffLimitExceeded", message)
                self._add_conditions(
                    run,
                    _condition("FailureTarget", "BackoffLimitExceeded", message),
                    _condition("Failed", "BackoffLimitExceeded", message),
                )
                self._after_finish(run, spec)
                return
        if run.stop_reason == "deadline":
            self._fail_deadline(run, spec, failures, stopped)

    def _fail_deadline(
        self, run: JobRun, spec: dict[str, Any], failures: int, stopped: PodRunner | None
    ) -> None:
        message = "Job was active longer than specified deadline"
        self._store.note("Job", run.namespace, run.name, "DeadlineExceeded", message)
        self._add_conditions(run, _condition("FailureTarget", "DeadlineExceeded", message))
        if stopped is not None:
            # The real controller deletes the pods still active at the deadline and counts them failed.
            self._delete_pod(stopped)
            failures += 1
        self._add_conditions(
            run, _condition("Failed", "DeadlineExceeded", message), active=0, ready=0, failed=failures
        )
        self._after_finish(run, spec)

    def _create_pod(self, run: JobRun, job: dict[str, Any], fault: Fault | None) -> PodRunner:
        template = job["spec"]["template"]
        name = f"{run.name}-{random_suffix()}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": run.namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": now(),
                "generateName": f"{run.name}-",
                "labels": dict(template["metadata"]["labels"]),
                "annotations": dict(template["metadata"].get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": run.name,
                        "uid": run.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
                "finalizers": ["batch.kubernetes.io/job-tracking"],
            },
            "spec": {**template["spec"]},
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        self._store.create("pods", pod, "")
        grace = template["spec"].get("terminationGracePeriodSeconds", 30)
        runner = PodRunner(
            store=self._store,
            pod=pod,
            pod_dir=self._work_dir / f"{run.namespace}_{name}",
            secrets=self._store.secret,
            base_env=self._base_env,
            image_paths=self._image_paths,
            fault=fault,
            pull_backoff_after=self._pull_backoff_after,
            stop=run.stop,
            grace_seconds=float(grace),
        )
        with self._lock:
            self._pods[(run.namespace, name)] = runner
        run.pods.append(runner)
        self._update_job(run, active=1)
        self._store.note("Job", run.namespace, run.name, "SuccessfulCreate", f"Created pod: {name}")
        return runner

    def _start_timer(self, run: JobRun, seconds: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        run.timers.append(timer)
        timer.start()

    def _after_finish(self, run: JobRun, spec: dict[str, Any]) -> None:
        for timer in run.timers:
            timer.cancel()  # a finished Job has no deadline left
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is not None:
            # The TTL controller deletes with Foreground propagation.
            self._start_timer(run, ttl, lambda: self._ttl_expired(run))

    def _ttl_expired(self, run: JobRun) -> None:
        try:
            self.delete(run.namespace, run.name, "Foreground", grace_seconds=None)
        except ApiError:
            return  # a client deleted it first

    # --- pods -----------------------------------------------------------------------------------

    def pod_runner(self, namespace: str, name: str) -> PodRunner | None:
        with self._lock:
            return self._pods.get((namespace, name))

    def _delete_pod(self, pod: PodRunner) -> None:
        self._store.delete("pods", pod.namespace, pod.name)
        with self._lock:
            self._pods.pop((pod.namespace, pod.name), None)
        shutil.rmtree(pod.pod_dir, ignore_errors=True)
        self._store.note("Pod", pod.namespace, pod.name, "Deleted", "pod deleted")

    # --- deletion -----------------------------------------------------------------------------

    def delete(self, namespace: str, name: str, policy: str, grace_seconds: float | None) -> dict[str, Any]:
        """Delete a Job. Orphan (the batch/v1 default) leaves its pods running; Background and
        Foreground kill their processes and delete them (Foreground keeps the Job, marked with a
        deletionTimestamp, until its pods are gone). Raises 404 for an unknown Job."""
        with self._lock:
            run = self._jobs.get((namespace, name))
        job = self._store.get("jobs", namespace, name)
        if job is None or run is None:
            raise not_found("jobs", "batch", name)
        for timer in run.timers:
            timer.cancel()
        if grace_seconds is not None:
            for pod in run.pods:
                pod.grace_seconds = grace_seconds
        if policy == "Orphan":
            run.stop_reason = "orphaned"
            self._forget(run)
            for pod in run.pods:
                self._store.update(
                    "pods", pod.namespace, pod.name, lambda p: p["metadata"].pop("ownerReferences", None)
                )
            self._store.delete("jobs", namespace, name)
            return success("jobs", "batch", name, run.uid)
        if policy == "Foreground":

            def mark(obj: dict[str, Any]) -> None:
                obj["metadata"]["deletionTimestamp"] = now()
                obj["metadata"]["finalizers"] = ["foregroundDeletion"]

            marked = self._store.update("jobs", namespace, name, mark)
            threading.Thread(target=self._tear_down, args=(run, True), daemon=True).start()
            return marked or job
        self._store.delete("jobs", namespace, name)
        threading.Thread(target=self._tear_down, args=(run, False), daemon=True).start()
        return success("jobs", "batch", name, run.uid)

    def _forget(self, run: JobRun) -> None:
        with self._lock:
            if self._jobs.get((run.namespace, run.name)) is run:
                del self._jobs[(run.namespace, run.name)]

    def _tear_down(self, run: JobRun, then_delete_job: bool) -> None:
        run.request_stop("deleted")
        run.finished.wait()
        for pod in run.pods:
            if self._store.get("pods", pod.namespace, pod.name) is not None:
                self._store.note("Pod", pod.namespace, pod.name, "Killing", "Stopping container")
                self._delete_pod(pod)
        self._forget(run)
        if then_delete_job:
            self._store.delete("jobs", run.namespace, run.name, uid=run.uid)
        self._store.note("Job", run.namespace, run.name, "SuccessfulDelete", "Deleted job and its pods")

    def shutdown(self) -> None:
        """Stop every Job: kill all processes (1 s grace) and wait for the controller threads."""
        with self._lock:
            runs = list(self._every_run)
        for run in runs:
            for timer in run.timers:
                timer.cancel()
            for pod in run.pods:
                pod.grace_seconds = min(pod.grace_seconds, 1.0)
            run.request_stop("shutdown")
        for run in runs:
            run.finished.wait(timeout=10)
