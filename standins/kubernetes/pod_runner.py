"""Runs one pod as local processes and keeps its `status` in the store the way kubelet would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from standins.kubernetes.containers import ContainerConfigError, SecretLookup, prepare
from standins.kubernetes.faults import UNSCHEDULABLE_MESSAGE, Fault
from standins.kubernetes.meta import now
from standins.kubernetes.store import Store

POLL_SECONDS = 0.05
PID1 = Path(__file__).with_name("pid1.py")
# kubelet's FallbackToLogsOnError keeps the last 80 lines, at most 2048 bytes, of a failed container.
_FALLBACK_LINES, _FALLBACK_BYTES = 80, 2048


class Outcome(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"  # the Job controller asked the pod to stop (deadline, deletion)


def _exit_code(returncode: int) -> int:
    # Container runtimes report death by signal N as exit code 128 + N.
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class PodRunner:
    store: Store
    pod: dict[str, Any]
    pod_dir: Path
    secrets: SecretLookup
    base_env: Mapping[str, str]
    image_paths: tuple[str, ...] = ()
    fault: Fault | None = None
    pull_backoff_after: float = 0.5
    stop: threading.Event = field(default_factory=threading.Event)
    grace_seconds: float = 30.0
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    _conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _status: dict[str, Any] = field(default_factory=dict)
    _fault_pending: bool = True

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def init_containers(self) -> list[dict[str, Any]]:
        return list(self.pod["spec"].get("initContainers") or [])

    @property
    def containers(self) -> list[dict[str, Any]]:
        return list(self.pod["spec"]["containers"])

    def log_path(self, container: str) -> Path:
        return self.pod_dir / "logs" / f"{container}.log"

    def container_state(self, container: str) -> dict[str, Any] | None:
        with self.store.condition:
            status = self._statuses.get(container)
            return dict(status["state"]) if status else None

    # --- status bookkeeping -------------------------------------------------------------------

    def _condition(
        self, kind: str, value: bool, reason: str | None = None, message: str | None = None
    ) -> None:
        condition: dict[str, Any] = {
            "type": kind,
            "status": "True" if value else "False",
            "lastProbeTime": None,
            "lastTransitionTime": now(),
        }
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        previous = self._conditions.get(kind)
        if previous and previous["status"] == condition["status"] and previous.get("reason") == reason:
            return
        self._conditions[kind] = condition

    def _container_status(self, container: dict[str, Any], state: dict[str, Any]) -> None:
        running = "running" in state
        status = {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": running,
            "started": running,
            "restartCount": 0,
            "state": state,
            "lastState": {},
        }
        if "waiting" not in state:
            status["containerID"] = f"standin://{self.namespace}/{self.name}/{container['name']}"
        with self.store.condition:
            self._statuses[container["name"]] = status

    def _publish(self, **status: Any) -> None:
        with self.store.condition:
            self._status.update(status)
            init_names = [c["name"] for c in self.init_containers]
            snapshot = dict(self._status)
            snapshot["conditions"] = list(self._conditions.values())
            if self._statuses:
                if init_names:
                    snapshot["initContainerStatuses"] = [self._statuses[n] for n in init_names]
                snapshot["containerStatuses"] = [self._statuses[c["name"]] for c in self.containers]

            def apply(pod: dict[str, Any]) -> None:
                pod["status"] = snapshot

            self.store.update("pods", self.namespace, self.name, apply)

    # --- lifecycle ----------------------------------------------------------------------------

    def run(self) -> Outcome:
        """Run the pod to completion; returns early with STOPPED once `stop` is set."""
        self._publish(phase="Pending", qosClass="BestEffort")
        if self.fault is Fault.UNSCHEDULABLE:
            self._condition("PodScheduled", False, "Unschedulable", UNSCHEDULABLE_MESSAGE)
            self._publish()
            self.stop.wait()
            return Outcome.STOPPED
        if self.stop.is_set():
            return Outcome.STOPPED
        self._schedule()
        for container in self.init_containers:
            exit_code = self._run_init(container)
            if exit_code is None:
                return self._stopped()
            if exit_code != 0:
                self._condition(
                    "Initialized", False, "ContainersNotInitialized", "containers with incomplete status"
                )
                self._publish(phase="Failed")
                return Outcome.FAILED
        self._condition("Initialized", True)
        self._publish()
        return self._run_app_containers()

    def _schedule(self) -> None:
        def set_node(pod: dict[str, Any]) -> None:
            pod["spec"]["nodeName"] = "standin-node"

        self.store.update("pods", self.namespace, self.name, set_node)
        self._condition("PodScheduled", True)
        has_init = bool(self.init_containers)
        if has_init:
            self._condition(
                "Initialized", False, "ContainersNotInitialized", "containers with incomplete status"
            )
        else:
            self._condition("Initialized", True)
        self._condition("Ready", False, "ContainersNotReady", "containers with unready status")
        self._condition("ContainersReady", False, "ContainersNotReady", "containers with unready status")
        for container in self.init_containers:
            self._container_status(container, {"waiting": {"reason": "PodInitializing"}})
        for container in self.containers:
            reason = "PodInitializing" if has_init else "ContainerCreating"
            self._container_status(container, {"waiting": {"reason": reason}})
        self.pod_dir.joinpath("logs").mkdir(parents=True, exist_ok=True)
        self.pod_dir.joinpath("home").mkdir(parents=True, exist_ok=True)
        self._publish(hostIP="127.0.0.1", podIP="127.0.0.1", podIPs=[{"ip": "127.0.0.1"}], startTime=now())

    def _take_fault(self, fault: Fault) -> bool:
        """True once, for the first container the fault applies to."""
        if self.fault is fault and self._fault_pending:
            self._fault_pending = False
            return True
        return False

    def _wait_image_pull_forever(self, container: dict[str, Any]) -> None:
        image = container.get("image", "")
        self._container_status(
            container,
            {
                "waiting": {
                    "reason": "ErrImagePull",
                    "message": f'failed to pull and unpack image "{image}": '
                    "rpc error: code = NotFound desc = not found",
                }
            },
        )
        self._publish()
        if self.stop.wait(self.pull_backoff_after):
            return
        self._container_status(
            container,
            {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}},
        )
        self._publish()
        self.stop.wait()

    def _start(self, container: dict[str, Any]) -> subprocess.Popen[bytes] | int | None:
        """Start a container's process. Returns the process, an exit code when it could not start,
        or None when the pod was told to stop while the container was still waiting."""
        if self._take_fault(Fault.IMAGE_PULL_ERROR):
            self._wait_image_pull_forever(container)
            return None
        while True:
            try:
                launch = prepare(
                    container,
                    self.pod,
                    self.pod_dir,
                    self._volume_dirs(),
                    self.secrets,
                    self.base_env,
                    self.image_paths,
                )
                break
            except ContainerConfigError as error:
                self._container_status(
                    container, {"waiting": {"reason": "CreateContainerConfigError", "message": str(error)}}
                )
                self._publish()
                # A Secret created later unblocks the container, as kubelet's retries do.
                if self.stop.wait(0.2):
                    return None
        if self.stop.is_set():
            return None
        started = now()
        try:
            if shutil.which(launch.argv[0], path=launch.env.get("PATH")) is None:
                raise FileNotFoundError(f"executable file not found: {launch.argv[0]}")
            with open(self.log_path(container["name"]), "ab") as log:
                process = subprocess.Popen(
                    # The container's "PID 1": when its command exits, whatever it left running goes
                    # too, as with a real container's PID namespace (standins/kubernetes/pid1.py).
                    [sys.executable, "-S", "-E", str(PID1), "--", *launch.argv],
                    cwd=launch.cwd,
                    env=launch.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, so a kill reaches its children
                )
        except OSError as error:
            self._terminated(container, 128, "StartError", started, f"failed to start container: {error}")
            return 128
        with self.store.condition:
            self._processes[container["name"]] = process
        self._container_status(container, {"running": {"startedAt": started}})
        self._publish()
        return process

    def _volume_dirs(self) -> dict[str, Path]:
        dirs = {}
        for volume in self.pod["spec"].get("volumes") or []:
            path = self.pod_dir / f"vol-{volume['name']}"
            path.mkdir(parents=True, exist_ok=True)
            dirs[volume["name"]] = path
        return dirs

    def _terminated(
        self, container: dict[str, Any], exit_code: int, reason: str, started: str, message: str | None = None
    ) -> None:
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": now(),
            "containerID": f"standin://{self.namespace}/{self.name}/{container['name']}",
        }
        if (
            message is None
            and exit_code != 0
            and container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        ):
            message = self._log_tail(container["name"])
        if message:
            terminated["message"] = message
        self._container_status(container, {"terminated": terminated})
        self._publish()

    def _log_tail(self, container: str) -> str:
        try:
            data = self.log_path(container).read_bytes()
        except OSError:
            return ""
        tail = b"\n".join(data.splitlines()[-_FALLBACK_LINES:])[-_FALLBACK_BYTES:]
        return tail.decode("utf-8", errors="replace")

    def _wait(self, process: subprocess.Popen[bytes]) -> int | None:
        """Exit code of the process, or None if the pod was told to stop first (process killed)."""
        while True:
            try:
                return process.wait(timeout=POLL_SECONDS)
            except subprocess.TimeoutExpired:
                if self.stop.is_set():
                    return None

    def _finish(self, container: dict[str, Any], returncode: int, started: str) -> int:
        code = _exit_code(returncode)
        self._terminated(container, code, "Completed" if code == 0 else "Error", started)
        return code

    def _run_init(self, container: dict[str, Any]) -> int | None:
        started = self._start(container)
        if not isinstance(started, subprocess.Popen):
            return started
        returncode = self._wait(started)
        if returncode is None:
            return None
        return self._finish(container, returncode, self._started_at(container))

    def _started_at(self, container: dict[str, Any]) -> str:
        return str(self._statuses[container["name"]]["state"]["running"]["startedAt"])

    def _run_app_containers(self) -> Outcome:
        running: dict[str, tuple[dict[str, Any], subprocess.Popen[bytes], str]] = {}
        codes: dict[str, int] = {}
        for container in self.containers:
            if self._take_fault(Fault.OOM_KILLED):
                self._terminated(container, 137, "OOMKilled", now())
                codes[container["name"]] = 137
                continue
            started = self._start(container)
            if started is None:
                return self._stopped()
            if isinstance(started, int):
                codes[container["name"]] = started
                continue
            running[container["name"]] = (container, started, self._started_at(container))
        if running:
            self._condition("Ready", True)
            self._condition("ContainersReady", True)
            self._publish(phase="Running")
        while running:
            if self.stop.is_set():
                return self._stopped()
            for name, (container, process, started_at) in list(running.items()):
                returncode = process.poll()
                if returncode is not None:
                    codes[name] = self._finish(container, returncode, started_at)
                    del running[name]
            time.sleep(POLL_SECONDS)
        for kind in ("Ready", "ContainersReady"):
            self._condition(kind, False, "PodCompleted")
        succeeded = all(code == 0 for code in codes.values())
        self._publish(phase="Succeeded" if succeeded else "Failed")
        return Outcome.SUCCEEDED if succeeded else Outcome.FAILED

    # --- stopping -----------------------------------------------------------------------------

    def _stopped(self) -> Outcome:
        self.kill()
        return Outcome.STOPPED

    def kill(self) -> None:
        """SIGTERM every live process group, SIGKILL what is left after the grace period; the
        containers are reported terminated with 128 + signal, as a runtime would."""
        with self.store.condition:
            processes = dict(self._processes)
        for process in processes.values():
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for process in processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        for container in self.init_containers + self.containers:
            process = processes.get(container["name"])
            status = self._statuses.get(container["name"], {})
            if process is not None and "running" in status.get("state", {}):
                self._finish(container, process.returncode, self._started_at(container))
        if self._status.get("phase") in ("Pending", "Running"):
            self._publish(phase="Failed")


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
