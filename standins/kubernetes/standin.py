"""`KubernetesStandin`: the fake API server's lifecycle and the Python hooks tests use."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from standins.kubernetes.containers import default_image_paths
from standins.kubernetes.controller import JobController
from standins.kubernetes.faults import Fault, FaultRule
from standins.kubernetes.http_api import StandinServer
from standins.kubernetes.meta import label_name_errors, subdomain_errors
from standins.kubernetes.store import ClusterEvent, Store


class KubernetesStandin:
    """A Kubernetes API on 127.0.0.1 that runs each Job's pod as local processes.

    `inherit_env` names the variables of this process a container starts with (PATH by default, so
    `python` and friends resolve); everything else comes from the container's own `env`/`envFrom`.
    `image_paths` are the host directories the containers' "image" is made of (default: this
    checkout and the running Python): paths inside them are never mapped onto a volume (see
    `standins.kubernetes.containers`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        inherit_env: Iterable[str] = ("PATH",),
        image_pull_backoff_after: float = 0.5,
        image_paths: Iterable[str | os.PathLike[str]] | None = None,
    ) -> None:
        self._address = (host, port)
        self._inherit_env = tuple(inherit_env)
        self._pull_backoff_after = image_pull_backoff_after
        self._image_paths = (
            default_image_paths() if image_paths is None else tuple(os.fspath(p) for p in image_paths)
        )
        self._store = Store()
        self._rules: list[FaultRule] = []
        self._rules_lock = threading.Lock()
        self._work_dir: Path | None = None
        self._server: StandinServer | None = None
        self._controller: JobController | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._work_dir = Path(tempfile.mkdtemp(prefix="k8s-standin-"))
        base_env = {name: os.environ[name] for name in self._inherit_env if name in os.environ}
        self._controller = JobController(
            self._store,
            self._work_dir,
            base_env,
            self._fault_for,
            self._pull_backoff_after,
            self._image_paths,
        )
        self._server = StandinServer(self._address, self._store, self._controller)
        self._thread = threading.Thread(target=self._server.serve_forever, name="k8s-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Kill every container process, end the watch streams, stop serving and remove the pods' files."""
        if self._server is None or self._controller is None:
            return
        self._controller.shutdown()
        self._store.close()
        self._server.shutdown()
        self._server.server_close()
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def work_dir(self) -> Path:
        """Where the pods' directories live (`<ns>_<pod>/vol-<volume>`, `.../logs/<container>.log`)."""
        if self._work_dir is None:
            raise RuntimeError("the stand-in is not running")
        return self._work_dir

    # --- test hooks ---------------------------------------------------------------------------

    def add_secret(self, namespace: str, name: str, data: Mapping[str, str | bytes]) -> None:
        """Create or replace a Secret; str values are stored UTF-8 encoded (like `stringData`).

        Raises ValueError for a namespace or name the API server would refuse.
        """
        problems = label_name_errors(namespace) + subdomain_errors(name)
        if problems:
            raise ValueError(f"invalid secret {namespace}/{name}: {'; '.join(problems)}")
        encoded = {
            key: value.encode() if isinstance(value, str) else bytes(value) for key, value in data.items()
        }
        self._store.put_secret(namespace, name, encoded)

    def inject(self, target: str, fault: Fault | str) -> None:
        """Make every Job created from now on whose name starts with `target` (or whose labels match
        `target`, when it contains "=") suffer `fault`. Raises ValueError for an unknown fault."""
        rule = FaultRule.parse(target, fault)
        with self._rules_lock:
            self._rules.append(rule)

    def clear_faults(self) -> None:
        with self._rules_lock:
            self._rules.clear()

    def _fault_for(self, job: dict[str, Any]) -> Fault | None:
        with self._rules_lock:
            return next((rule.fault for rule in self._rules if rule.matches(job)), None)

    @property
    def jobs_created(self) -> list[str]:
        """`namespace/name` of every Job ever created, in order (deleted ones included)."""
        with self._store.condition:
            return list(self._store.jobs_created)

    @property
    def events(self) -> list[ClusterEvent]:
        with self._store.condition:
            return list(self._store.events)
