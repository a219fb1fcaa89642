"""TASK_EXECUTOR=kubernetes: every agent run is a Job of its own, re-attached after a worker crash.

`run` creates the Job under a name derived from `run_id` (stable across retries of one activity), or
finds the one an earlier attempt created (409 AlreadyExists), then polls it until it finishes:

* Complete → the one frame of the `result` container's log is read and verified with the Job's
  result key (k8s_channel, job_keys); an `ok` result is returned and the Job left to
  `ttlSecondsAfterFinished`, so a retry whose completion was lost reads it again; an `error` result
  becomes the error and the Job is deleted.
* Failed → the reason (DeadlineExceeded, OOMKilled, a failed clone, the agent container's exit and
  log tail, scrubbed of secrets) becomes the error, and the Job is deleted. Nothing in the agent
  container's own log is ever taken for a result.
* A pod that cannot start (unschedulable, image pull failing, missing Secret) fails the run after
  K8S_JOB_PENDING_TIMEOUT seconds (an invalid image name at once), with the Kubernetes reason.

Errors: `PermanentError` (activities.http_errors) for what a retry cannot fix (image, OOM, deadline,
oversized result, Kubernetes 4xx), `ValueError` for a run refused before it started (as the local
executor raises), `AgentJobFailed` for the rest, which Temporal retries.

Cancellation deletes the Job (propagation Background, so its pod goes too), unless the activity was
cancelled because this worker shuts down or its heartbeat timed out: then the next attempt re-attaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import kubernetes
from kubernetes.client import ApiException, BatchV1Api, CoreV1Api, V1Job, V1Pod
from temporalio import activity

from contracts.errors import PermanentError
from contracts.settings import Settings
from executors.copilot_cli import scrub
from executors.job_keys import JobKeys
from executors.k8s_channel import MAX_FRAME_PAYLOAD_BYTES, ChannelError, Frame, parse_result, read_frame
from executors.k8s_spec import AGENT_CONTAINER, CLONE_CONTAINER, RESULT_CONTAINER, build_job
from executors.tasks import AgentResult, AgentTask

log = logging.getLogger(__name__)
T = TypeVar("T")
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
REQUEST_TIMEOUT = (5, 60)  # connect, read: a hung API server must not hang the activity's thread
LOG_TAIL_LINES = 40
RESULT_TAIL_LINES = 200
EX_TEMPFAIL = 75  # the clone step's "transient failure"
_STUCK_PERMANENT = {"ErrImagePull": "ImagePullError", "ImagePullBackOff": "ImagePullError"}
_STUCK_CONFIG = ("CreateContainerConfigError", "CreateContainerError")
_IMMEDIATE = {"InvalidImageName": "ImagePullError", "ErrImageNeverPull": "ImagePullError"}


class AgentJobFailed(Exception):
    """The agent Job failed in a way a new attempt may not (retryable)."""


class _Stuck:
    """Why the pod cannot start, and the error to raise once it has been stuck too long."""

    def __init__(self, reason: str, error: Exception, immediate: bool = False) -> None:
        self.reason, self.error, self.immediate = reason, error, immediate


class KubernetesExecutor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._apis: tuple[BatchV1Api, CoreV1Api] | None = None
        self._image: str | None = None
        self.keys = JobKeys.from_settings(settings)

    # --- configuration ------------------------------------------------------------------------
    def _clients(self) -> tuple[BatchV1Api, CoreV1Api]:
        with self._lock:
            if self._apis is None:
                configuration = kubernetes.client.Configuration()
                if self.settings.k8s_api_url:
                    configuration.host = self.settings.k8s_api_url
                else:
                    kubernetes.config.load_incluster_config(client_configuration=configuration)
                api = kubernetes.client.ApiClient(configuration)
                self._apis = (BatchV1Api(api), CoreV1Api(api))
            return self._apis

    @property
    def namespace(self) -> str:
        if self.settings.k8s_namespace:
            return self.settings.k8s_namespace
        try:
            return NAMESPACE_FILE.read_text().strip()
        except OSError:
            raise ValueError("K8S_NAMESPACE is unset and the worker is not running in a cluster") from None

    def _job_image(self) -> str:
        """K8S_JOB_IMAGE, else the image of the worker's own pod (HOSTNAME is the pod's name)."""
        if self.settings.k8s_job_image:
            return self.settings.k8s_job_image
        if self._image is None:
            pod_name = os.environ.get("HOSTNAME", "")
            try:
                pod = self._call(self._clients()[1].read_namespaced_pod, pod_name, self.namespace)
            except (ApiException, PermanentError, ValueError):
                raise ValueError("K8S_JOB_IMAGE is unset and the worker's own pod cannot be read") from None
            containers = pod.spec.containers
            chosen = next((c for c in containers if c.name == "worker"), containers[0])
            self._image = str(chosen.image)
        return self._image

    # --- API calls ----------------------------------------------------------------------------
    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One API call; a 4xx other than 409/429 is permanent (RBAC, quota, invalid spec)."""
        try:
            return fn(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (404, 409, 429):
                raise PermanentError(
                    f"Kubernetes API refused {fn.__name__}: {exc.status} {_api_message(exc)}"[:1000],
                    kind="KubernetesAPIError",
                ) from None
            raise

    def _create_or_find(self, job: V1Job) -> V1Job:
        """The Job of this run: created now, or the one an earlier attempt created."""
        batch = self._clients()[0]
        name = job.metadata.name
        deadline = time.monotonic() + 60
        while True:
            try:
                created = self._call(batch.create_namespaced_job, self.namespace, job)
                log.info("created agent Job %s", name)
                return created
            except ApiException as exc:
                if exc.status != 409:
                    raise
            try:
                existing = self._call(batch.read_namespaced_job, name, self.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    continue  # deleted in between: create it again
                raise
            if existing.metadata.deletion_timestamp is None:
                log.info("re-attached to agent Job %s", name)
                return existing
            if time.monotonic() > deadline:
                raise AgentJobFailed(f"agent Job {name} is still being deleted; a retry will recreate it")
            time.sleep(1)  # an earlier attempt's Job on its way out: wait, then create ours

    def _read_job(self, name: str) -> V1Job | None:
        try:
            return self._call(self._clients()[0].read_namespaced_job, name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _pod(self, job: V1Job) -> V1Pod | None:
        selector = f"controller-uid={job.metadata.uid}"
        pods = self._call(self._clients()[1].list_namespaced_pod, self.namespace, label_selector=selector)
        items = sorted(pods.items, key=lambda p: str(p.metadata.creation_timestamp or ""))
        return items[-1] if items else None

    def _log(self, pod: V1Pod, container: str, tail_lines: int, limit: int) -> str:
        response = self._call(
            self._clients()[1].read_namespaced_pod_log,
            pod.metadata.name,
            self.namespace,
            container=container,
            tail_lines=tail_lines,
            _preload_content=False,  # raw bytes: the client would otherwise "deserialise" JSON logs
        )
        try:
            return response.read(limit).decode("utf-8", "replace")
        finally:
            response.release_conn()

    def _log_tail(self, pod: V1Pod | None, container: str) -> str:
        if pod is None:
            return ""
        try:
            text = self._log(pod, container, LOG_TAIL_LINES, 64 * 1024)
        except (ApiException, PermanentError):
            return ""
        return scrub(text, self.settings.secret_values())[-2000:].strip()

    def _delete(self, name: str) -> None:
        try:
            self._call(
                self._clients()[0].delete_namespaced_job,
                name,
                self.namespace,
                propagation_policy="Background",  # without it batch/v1 orphans the pod
            )
            log.info("deleted agent Job %s", name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    # --- the run ------------------------------------------------------------------------------
    async def run(self, task: AgentTask, *, run_id: str, traceparent: str | None = None) -> AgentResult:
        if not self.settings.copilot_provider_base_url:
            raise ValueError(
                "TASK_EXECUTOR=kubernetes needs a BYOK model provider (COPILOT_PROVIDER_BASE_URL): agent "
                "Jobs hold no credential and reach the model only through the worker's Job proxy"
            )
        if not self.settings.k8s_proxy_url:
            raise ValueError(
                "TASK_EXECUTOR=kubernetes needs K8S_PROXY_URL (where agent Jobs reach the worker's Job proxy)"
            )
        image = await asyncio.to_thread(self._job_image)
        job = build_job(
            task,
            self.settings,
            run_id=run_id,
            image=image,
            namespace=self.namespace,
            traceparent=traceparent,
            keys=self.keys,
            now=time.time(),
        )
        name = job.metadata.name
        # The create runs to its end even if we are cancelled meanwhile, so a cancellation can never
        # delete "before" a create that then lands and leaves the Job running unowned.
        creating = asyncio.ensure_future(asyncio.to_thread(self._create_or_find, job))
        try:
            current = await asyncio.shield(creating)
            return await self._await_result(name, current.metadata.uid)
        except asyncio.CancelledError:
            if _delete_on_cancel():
                await asyncio.shield(self._delete_after(creating, name))
            raise

    async def _delete_after(self, creating: asyncio.Future[V1Job], name: str) -> None:
        with contextlib.suppress(Exception):
            await creating
        await asyncio.to_thread(self._delete, name)

    async def _await_result(self, name: str, uid: str) -> AgentResult:
        stuck_since: float | None = None
        while True:
            job = await asyncio.to_thread(self._read_job, name)
            if job is None or job.metadata.uid != uid:
                raise AgentJobFailed(f"agent Job {name} was deleted before it finished")
            pod = await asyncio.to_thread(self._pod, job)
            state = _finished(job)
            if state == "Complete":
                return await asyncio.to_thread(self._result, name, pod)
            if state == "Failed":
                error = await asyncio.to_thread(self._diagnose, job, pod)
                await asyncio.to_thread(self._delete, name)
                raise error
            stuck = _stuck(name, pod, self.settings.k8s_job_pending_timeout)
            if stuck is None:
                stuck_since = None
            else:
                stuck_since = stuck_since or time.monotonic()
                waited = time.monotonic() - stuck_since
                if stuck.immediate or waited >= self.settings.k8s_job_pending_timeout:
                    log.warning("agent Job %s cannot start (%s); deleting it", name, stuck.reason)
                    await asyncio.to_thread(self._delete, name)
                    raise stuck.error
            await asyncio.sleep(self.settings.k8s_job_poll_interval)

    def _result(self, name: str, pod: V1Pod | None) -> AgentResult:
        try:
            if pod is None:
                raise ChannelError("its pod is gone")
            log_text = self._log(
                pod, RESULT_CONTAINER, RESULT_TAIL_LINES, MAX_FRAME_PAYLOAD_BYTES + 256 * 1024
            )
            frame = read_frame(log_text, self.keys.result_key(name))
            if frame.status == "ok":
                return parse_result(frame)
        except ChannelError as exc:
            # Nothing usable to re-read: remove the Job, so the retry runs the agent again.
            self._delete(name)
            message = scrub(f"agent Job {name} succeeded but its result cannot be read: {exc}", self._secrets)
            raise AgentJobFailed(message) from None
        self._delete(name)
        raise self._reported_error(name, frame)

    def _reported_error(self, name: str, frame: Frame) -> Exception:
        """The error of a run whose agent container reported one (signed by the result container)."""
        kind = str(frame.payload.get("type", ""))
        message = scrub(str(frame.payload.get("message", ""))[:2000], self._secrets)
        if kind == "ValueError":
            return ValueError(f"agent Job {name} refused the run: {message}")
        if kind == "ResultTooLarge":
            return PermanentError(f"agent Job {name}: {message}", kind="AgentResultTooLarge")
        return AgentJobFailed(f"agent Job {name}: {message}")

    @property
    def _secrets(self) -> list[str]:
        return self.settings.secret_values()

    def _diagnose(self, job: V1Job, pod: V1Pod | None) -> Exception:
        """The error for a failed Job, most specific cause first."""
        name = job.metadata.name
        condition = next(c for c in job.status.conditions if c.type == "Failed" and c.status == "True")
        statuses = _statuses(pod)
        for status in statuses:
            terminated = status.state.terminated if status.state else None
            if terminated is not None and terminated.reason == "OOMKilled":
                return PermanentError(
                    f"agent Job {name}: container {status.name} was OOMKilled (memory limit "
                    f"{self.settings.k8s_job_memory_limit}; raise K8S_JOB_MEMORY_LIMIT)",
                    kind="AgentJobOOMKilled",
                )
        if condition.reason == "DeadlineExceeded":
            return PermanentError(
                f"agent Job {name}: DeadlineExceeded after K8S_JOB_TIMEOUT={self.settings.k8s_job_timeout}s "
                f"({condition.message})",
                kind="AgentJobDeadlineExceeded",
            )
        clone = next((s for s in statuses if s.name == CLONE_CONTAINER), None)
        clone_end = clone.state.terminated if clone and clone.state else None
        if clone_end is not None and clone_end.exit_code != 0:
            tail = self._log_tail(pod, CLONE_CONTAINER)
            message = f"agent Job {name}: cloning failed (exit {clone_end.exit_code}): {tail}"
            if clone_end.exit_code == EX_TEMPFAIL:
                return AgentJobFailed(message)
            return PermanentError(message[:2000], kind="CloneFailed")
        return self._agent_failure(name, condition, pod)

    def _agent_failure(self, name: str, condition: Any, pod: V1Pod | None) -> Exception:
        for container in (AGENT_CONTAINER, RESULT_CONTAINER):
            status = next((s for s in _statuses(pod) if s.name == container), None)
            ended = status.state.terminated if status and status.state else None
            if ended is not None and ended.exit_code != 0:
                tail = self._log_tail(pod, container)
                return AgentJobFailed(
                    f"agent Job {name}: container {container} ended {ended.reason} (exit {ended.exit_code}); "
                    f"log tail: {tail}"
                )
        return AgentJobFailed(f"agent Job {name} failed: {condition.reason}: {condition.message}")


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body).get("message", exc.reason))[:500]
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)


def _finished(job: V1Job) -> str | None:
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def _statuses(pod: V1Pod | None) -> list[Any]:
    if pod is None or pod.status is None:
        return []
    return list(pod.status.init_container_statuses or []) + list(pod.status.container_statuses or [])


def _stuck(name: str, pod: V1Pod | None, timeout: int) -> _Stuck | None:
    """Why `pod` cannot start, if it cannot."""
    if pod is None or pod.status is None:
        return None
    for condition in pod.status.conditions or []:
        if (
            condition.type == "PodScheduled"
            and condition.status == "False"
            and condition.reason == "Unschedulable"
        ):
            return _Stuck(
                "Unschedulable",
                AgentJobFailed(
                    f"agent Job {name} stayed unschedulable for {timeout}s: Unschedulable: {condition.message}"
                ),
            )
    for status in _statuses(pod):
        waiting = status.state.waiting if status.state else None
        if waiting is None or not waiting.reason:
            continue
        detail = f"{waiting.reason}: {waiting.message or ''}".strip()
        if waiting.reason in _IMMEDIATE:
            error = PermanentError(f"agent Job {name} cannot pull its image: {detail}", kind="ImagePullError")
            return _Stuck(waiting.reason, error, immediate=True)
        if waiting.reason in _STUCK_PERMANENT:
            error = PermanentError(
                f"agent Job {name} could not pull its image for {timeout}s: {detail}", kind="ImagePullError"
            )
            return _Stuck(waiting.reason, error)
        if waiting.reason in _STUCK_CONFIG:
            error = PermanentError(
                f"agent Job {name}: container {status.name} cannot be created: {detail}",
                kind="ConfigurationError",
            )
            return _Stuck(waiting.reason, error)
    return None


def _delete_on_cancel() -> bool:
    """Delete the Job unless the cancellation means "this worker lets go, another attempt follows"."""
    if not activity.in_activity():
        return True
    if activity.is_worker_shutdown():
        return False
    details = activity.cancellation_details()
    return details is None or not (details.worker_shutdown or details.timed_out or details.paused)
