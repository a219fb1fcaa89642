"""The one door every agent-side process goes through with the local executor: a bubblewrap sandbox.

The Copilot CLI and everything it starts, the test run that measures the evidence, and the git that
collects the agent's patch each run in a sandbox made for them and destroyed with them (decision and
measurements: docs/adr/0013-bubblewrap-agent-sandbox.md):

- own PID namespace (`--unshare-pid`, `--die-with-parent`, `--new-session`): the sandbox sees only
  its own processes, its /proc is its own, and when its first process ends, or the worker kills
  bubblewrap, or the worker dies, the kernel kills everything left inside (setsid + double fork
  included);
- not the worker's uid: as root, a uid of its own per sandbox (`SANDBOX_UID_BASE` + slot), set with
  setpriv, no capabilities, no_new_privs; as a non-root worker, a user namespace (the outside uid is
  then the worker's, but the PID and mount namespaces still keep every worker process out of reach);
- own mount namespace: a fresh root holding only the read-only runtime (/usr, a few /etc files,
  Python and its venv, the CLI and its unpacked cache, the report tool) and the paths the caller
  makes writable (the run's clone and run directory); /tmp is a size-capped tmpfs; WORK_DIR, other
  runs, the worker's files and `.env` do not exist there;
- own network namespace with only a loopback: nothing on the host is reachable (Temporal, the
  worker's metrics, GitLab, Jira, ...). With a `ModelRoute`, sandbox_init relays 127.0.0.1:PORT to
  the model proxy's unix socket, bound into the sandbox: the proxy is the only way out;
- limits: memory and process count through a cgroup (v1 or v2, when the worker may create one),
  RLIMIT_NPROC / NOFILE / FSIZE / CORE always, tmpfs size; wall time is the caller's timeout, which
  kills the whole namespace.

There is no unsandboxed path: without a working bubblewrap `check()` raises SandboxUnavailable, which
names the fix, and the executor refuses to run agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from executors import sandbox_init
from executors.model_proxy import PREFIX, LeaseBudget, ModelProxy

if TYPE_CHECKING:
    from contracts.settings import Settings

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install -y bubblewrap`, or `make setup` as root); "
    "in a container the runtime must allow user namespaces or run the worker as root"
)
MODEL_PORT = 18080  # inside the sandbox's own network namespace: no clash with anything on the host
MODEL_SOCKET = Path("/run/sandbox/model.sock")
SANDBOX_HOSTNAME = "agent-sandbox"
CGROUP_NAME = "gitlab-copilot-agent"
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "ssl",
    "ca-certificates",
    "alternatives",
    "localtime",
    "mime.types",
)
KILL_WAIT_S = 5.0


class SandboxUnavailable(ValueError):
    """No working process sandbox on this host: agent runs are refused (the message names the fix).
    A ValueError: retrying cannot help, the activities report it as a configuration error."""


class SandboxRefused(ValueError):
    """A run this sandbox cannot confine as required (e.g. a GitHub-token run: see model_access)."""


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 2 * 1024**3
    max_processes: int = 256
    tmp_bytes: int = 256 * 1024**2
    open_files: int = 4096
    file_bytes: int = 1024**3  # the largest single file a process may write


@dataclass(frozen=True)
class ModelRoute:
    """The model proxy's unix socket for one lease; inside, it answers on 127.0.0.1:MODEL_PORT."""

    socket: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{MODEL_PORT}{PREFIX}"


@dataclass(frozen=True)
class ModelAccess:
    """What the CLI is told about its model: a URL and key valid inside its sandbox, and the route."""

    base_url: str
    api_key: str | None
    route: ModelRoute | None
    # Why the proxy refuses this run's lease now ("lease budget exceeded: ..."), None while it may
    # spend: the CLI reports a refusal only as a bare HTTP status, so the failure names it from here.
    refusal: Callable[[], str | None] = lambda: None


# --- host checks ------------------------------------------------------------------------------------
def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def _probe(bwrap: str, as_root: bool) -> str | None:
    """None when a minimal sandbox works on this host, else why not."""
    args = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc"]
    if not as_root:
        args += ["--unshare-user", "--uid", "1000", "--gid", "1000"]
    try:
        out = subprocess.run([*args, "true"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if out.returncode == 0 else (out.stderr.strip() or f"exit {out.returncode}")


def check() -> None:
    """Raise SandboxUnavailable (with the fix) unless bubblewrap works here."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable(
            f"agent runs need the bubblewrap sandbox, and `bwrap` is not on PATH: {INSTALL_HINT}"
        )
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        raise SandboxUnavailable(
            "agent runs as root need util-linux `setpriv` (apt-get install -y util-linux)"
        )
    why = _probe(bwrap, os.geteuid() == 0)
    if why:
        raise SandboxUnavailable(f"bubblewrap cannot create a sandbox on this host ({why}): {INSTALL_HINT}")


# --- cgroups (best effort, measured once) -------------------------------------------------------------
def _cgroup_roots() -> list[tuple[Path, dict[str, str]]]:
    """Where a per-sandbox cgroup can be made, with the limit files to write ({file: setting})."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").is_file():  # unified (v2) hierarchy only
        own = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[-1].lstrip("/")
        parent = base / own
        controllers = (parent / "cgroup.subtree_control").read_text().split() if own else []
        files = {"memory": "memory.max", "pids": "pids.max"}
        return [(parent / CGROUP_NAME, {files[c]: c for c in controllers if c in files})]
    return [
        (base / controller / CGROUP_NAME, {file: controller})
        for controller, file in (("memory", "memory.limit_in_bytes"), ("pids", "pids.max"))
        if (base / controller / "cgroup.procs").is_file()
    ]


@functools.cache
def cgroup_support() -> tuple[str, ...]:
    """The limits this host lets the worker put on a sandbox's cgroup ("memory", "pids")."""
    found: list[str] = []
    for root, files in _cgroup_roots():
        probe = root / f"probe-{os.getpid()}"
        try:
            probe.mkdir(parents=True, exist_ok=True)
            probe.rmdir()
        except OSError:
            continue
        found += files.values()
    return tuple(found)


class _Cgroup:
    def __init__(self, limits: SandboxLimits) -> None:
        self.dirs: list[Path] = []
        if not cgroup_support():
            return
        name = f"sbx-{uuid.uuid4().hex[:12]}"
        values = {"memory": str(limits.memory_bytes), "pids": str(limits.max_processes)}
        for root, files in _cgroup_roots():
            path = root / name
            try:
                path.mkdir(parents=True)
                for file, controller in files.items():
                    (path / file).write_text(values[controller])
            except OSError:
                continue
            self.dirs.append(path)

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
        return found

    async def destroy(self) -> None:
        deadline = time.monotonic() + KILL_WAIT_S
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.02)
        for d in self.dirs:
            with contextlib.suppress(OSError):
                d.rmdir()


# --- the sandbox ----------------------------------------------------------------------------------
class _UidPool:
    """As root, every live sandbox gets a uid of its own: no two runs share a uid or a process count.

    A uid is held with an exclusive flock on a file named after it, so several worker processes on
    one host (or test sessions side by side) never hand out the same uid at once.
    """

    def __init__(self, base: int, size: int = 4096) -> None:
        self.base, self.size = base, size
        self._dir = Path(tempfile.gettempdir()) / f"gitlab-copilot-agent-uids-{base}"
        self._held: dict[int, int] = {}

    def take(self) -> int:
        self._dir.mkdir(mode=0o700, exist_ok=True)
        for slot in range(self.size):
            uid = self.base + slot
            if uid in self._held:
                continue
            fd = os.open(self._dir / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._held[uid] = fd
            return uid
        raise SandboxUnavailable("no free sandbox uid (too many sandboxes at once)")

    def give(self, uid: int) -> None:
        fd = self._held.pop(uid, None)
        if fd is not None:
            os.close(fd)  # closing releases the lock


def _chown_tree(path: Path, uid: int) -> None:
    os.lchown(path, uid, uid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(root, name), uid, uid)


def default_runtime() -> list[Path]:
    """Read-only paths every sandbox needs: the interpreter running the service, its venv, sandbox_init."""
    return [Path(sys.base_prefix), Path(sys.prefix), Path(sandbox_init.__file__)]


@dataclass
class _Mounts:
    args: list[str] = field(default_factory=list)
    made: set[str] = field(default_factory=lambda: {"/"})

    def _parents(self, dest: str) -> None:
        parts = Path(dest).parts
        for i in range(2, len(parts)):
            parent = str(Path(*parts[:i]))
            if parent not in self.made:
                self.args += ["--perms", "0755", "--dir", parent]
                self.made.add(parent)

    def bind(self, source: Path, dest: Path, *, writable: bool = False) -> None:
        """`source` (resolved) at `dest`; a symlinked `dest` becomes a symlink to the resolved path."""
        real = source.resolve()
        if str(real) not in self.made:
            self._parents(str(real))
            self.args += ["--bind" if writable else "--ro-bind", str(real), str(real)]
            self.made.add(str(real))
        if str(dest) != str(real) and str(dest) not in self.made:
            self._parents(str(dest))
            self.args += ["--symlink", str(real), str(dest)]
            self.made.add(str(dest))


class ProcessSandbox:
    """Makes bubblewrap sandboxes; one instance per executor (it owns the uid pool)."""

    measures_tests = True  # the implement runner measures the evidence in a new sandbox of its own

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        runtime: Sequence[Path] = (),
        uid_base: int = 200_000,
        budget: LeaseBudget | None = None,
        connect_timeout: float = 10.0,
        idle_timeout: float = 120.0,
    ) -> None:
        check()
        self.limits = limits or SandboxLimits()
        self.runtime = [*default_runtime(), *runtime]
        self.as_root = os.geteuid() == 0
        self._uids = _UidPool(uid_base)
        self._budget = budget or LeaseBudget()
        self._timeouts = (connect_timeout, idle_timeout)
        self._proxies: dict[tuple[str, str | None, str], ModelProxy] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessSandbox:
        return cls(
            SandboxLimits(
                memory_bytes=settings.sandbox_memory_mb * 1024**2,
                max_processes=settings.sandbox_max_processes,
                tmp_bytes=settings.sandbox_tmp_mb * 1024**2,
            ),
            runtime=[Path(settings.copilot_executable).parent, settings.copilot_cache_path],
            uid_base=settings.sandbox_uid_base,
            budget=LeaseBudget.from_settings(settings),
            connect_timeout=settings.model_proxy_connect_timeout,
            idle_timeout=settings.model_proxy_idle_timeout,
        )

    @contextlib.asynccontextmanager
    async def model_access(
        self, base_url: str, api_key: str | None, provider_type: str, *, write_access: bool
    ) -> AsyncIterator[ModelAccess]:
        """A lease on the model proxy for one CLI run, through a unix socket only its sandbox sees.
        The lease, and with it the socket, ends with the block: when the CLI has exited."""
        if not base_url:
            # GitHub-token mode would need the sandbox to reach GitHub's Copilot service, and the
            # CLI to hold the GitHub token where a write agent can read it: refused (docs/security.md).
            raise SandboxRefused(
                "the local executor's sandbox reaches only the model proxy, so GitHub-token (non-BYOK) "
                f"{'write ' if write_access else ''}runs are refused: configure a BYOK provider "
                "(COPILOT_PROVIDER_BASE_URL) or use TASK_EXECUTOR=kubernetes"
            )
        key = (base_url, api_key, provider_type)
        proxy = self._proxies.get(key)
        if proxy is None:
            connect, idle = self._timeouts
            proxy = ModelProxy(
                base_url,
                api_key,
                provider_type=provider_type,
                budget=self._budget,
                connect_timeout=connect,
                idle_timeout=idle,
            )
            self._proxies[key] = proxy
        async with proxy.lease(unix_socket=True) as lease:
            assert lease.socket is not None
            route = ModelRoute(lease.socket)
            yield ModelAccess(
                route.base_url, lease.token, route, refusal=lambda: lease.spent.over(proxy.budget)
            )

    def _argv(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        uid: int,
        writable: Sequence[Path],
        readable: Sequence[Path],
        route: ModelRoute | None,
    ) -> list[str]:
        bwrap = bwrap_path()
        assert bwrap is not None  # check() ran in __init__
        m = _Mounts()
        m.args += ["--ro-bind", "/usr", "/usr"]
        m.made.add("/usr")
        for top in ("/bin", "/lib", "/lib64", "/sbin", "/lib32", "/libx32"):
            if os.path.islink(top):
                m.args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                m.args += ["--ro-bind", top, top]
            m.made.add(top)
        m.args += ["--perms", "0755", "--dir", "/etc"]
        m.made.add("/etc")
        for name in ETC_FILES:
            if os.path.exists(f"/etc/{name}"):
                m.args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
                m.made.add(f"/etc/{name}")
        m.args += ["--proc", "/proc", "--dev", "/dev"]
        tmp = "/tmp"  # noqa: S108 (the sandbox's own size-capped tmpfs)
        m.args += ["--size", str(self.limits.tmp_bytes), "--perms", "1777", "--tmpfs", tmp]
        m.made |= {"/proc", "/dev", tmp}
        for path in sorted({*self.runtime, *readable}, key=lambda p: len(p.parts)):
            if path.exists():
                m.bind(path, path)
        for path in sorted(writable, key=lambda p: len(p.parts)):
            m.bind(path, path, writable=True)
        limits = [
            f"nproc={self.limits.max_processes}",
            f"nofile={self.limits.open_files}",
            f"fsize={self.limits.file_bytes}",
            "core=0",
        ]
        init = [sys.executable, "-I", sandbox_init.__file__, *(f"--limit={lim}" for lim in limits)]
        if route is not None:
            m.args += ["--perms", "0755", "--dir", str(MODEL_SOCKET.parent)]
            m.args += ["--bind", str(route.socket), str(MODEL_SOCKET)]
            init.append(f"--forward={MODEL_PORT}={MODEL_SOCKET}")
        namespaces = [
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            SANDBOX_HOSTNAME,
            "--die-with-parent",
            "--new-session",
        ]
        if self.as_root:
            user = [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--no-new-privs",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ]
        else:
            namespaces += ["--unshare-user", "--uid", "1000", "--gid", "1000", "--cap-drop", "ALL"]
            user = []
        return [bwrap, *namespaces, *m.args, "--chdir", str(cwd), "--", *user, *init, "--", *argv]

    @contextlib.asynccontextmanager
    async def process(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        writable: Sequence[Path] = (),
        readable: Sequence[Path] = (),
        route: ModelRoute | None = None,
        **popen: Any,
    ) -> AsyncIterator[asyncio.subprocess.Process]:
        """Start `argv` in a new sandbox; leaving the block destroys the sandbox and all it started."""
        uid = self._uids.take() if self.as_root else os.geteuid()
        cgroup = _Cgroup(self.limits) if self.as_root else None
        proc: asyncio.subprocess.Process | None = None
        try:
            if self.as_root:
                for path in writable:
                    await asyncio.to_thread(_chown_tree, path, uid)
                if route is not None:
                    os.chown(route.socket, uid, uid)
            command = self._argv(argv, cwd=cwd, uid=uid, writable=writable, readable=readable, route=route)
            if cgroup is not None and cgroup.dirs:
                # Join the cgroups before bubblewrap forks, so nothing it starts is outside them.
                join = 'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"'
                command = ["sh", "-c", join, "sandbox-join", *cgroup.procs_files, "--", *command]
            proc = await asyncio.create_subprocess_exec(*command, env=env, start_new_session=True, **popen)
            yield proc
        finally:
            if proc is not None:
                # bubblewrap's init dies with it (--die-with-parent), and the kernel then kills the
                # whole PID namespace.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        await proc.wait()
            if cgroup is not None:
                await cgroup.destroy()
            if self.as_root:
                self._uids.give(uid)


@dataclass(frozen=True)
class Captured:
    exit_code: int
    stdout: bytes
    stderr: bytes
    truncated: bool  # stdout went over max_output; the command was killed there


async def run_captured(
    sandbox: Sandbox,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    writable: Sequence[Path] = (),
    stdin: bytes | None = None,
    max_output: int = 64 * 1024 * 1024,
    timeout_s: float = 120,
) -> Captured:
    """A short command in a fresh sandbox without network. Raises TimeoutError after `timeout_s`."""
    async with sandbox.process(
        argv,
        cwd=cwd,
        env=env,
        writable=writable,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        async with asyncio.timeout(timeout_s):
            if stdin is not None:
                assert proc.stdin is not None
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.write(stdin)
                    await proc.stdin.drain()
                    proc.stdin.close()
            errors = asyncio.create_task(proc.stderr.read(64 * 1024))
            chunks: list[bytes] = []
            size = 0
            while size <= max_output and (data := await proc.stdout.read(1024 * 1024)):
                chunks.append(data)
                size += len(data)
            if size > max_output:
                return Captured(-1, b"".join(chunks)[:max_output], b"", truncated=True)
            code = await proc.wait()
            return Captured(code, b"".join(chunks), await errors, truncated=False)


class JobContainer:
    """Inside a Kubernetes agent Job the pod is the sandbox (executors/k8s_spec.py: its own network
    policy, no service-account token, non-root, read-only root): processes start directly, and the
    model settings are the Job's own."""

    # The Job's `tests` container measures the evidence after this container has ended, on a
    # checkout this container never mounts (executors/job_tests.py); the agent's pod cannot.
    measures_tests = False

    @contextlib.asynccontextmanager
    async def model_access(
        self, base_url: str, api_key: str | None, provider_type: str, *, write_access: bool
    ) -> AsyncIterator[ModelAccess]:
        yield ModelAccess(base_url, api_key, None)

    @contextlib.asynccontextmanager
    async def process(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        writable: Sequence[Path] = (),
        readable: Sequence[Path] = (),
        route: ModelRoute | None = None,
        **popen: Any,
    ) -> AsyncIterator[asyncio.subprocess.Process]:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=env, start_new_session=True, **popen)
        try:
            yield proc
        finally:
            _kill_tree(proc)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(proc: asyncio.subprocess.Process) -> None:
    targets = _descendants(proc.pid) if proc.returncode is None else []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


Sandbox = ProcessSandbox | JobContainer
