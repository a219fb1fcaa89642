"""The process sandbox itself (real bubblewrap): limits, no network, nothing of the host, no fallback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from executors import process_sandbox
from executors.process_sandbox import (
    ProcessSandbox,
    SandboxLimits,
    SandboxUnavailable,
    cgroup_support,
    run_captured,
)

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"}


async def sh(sandbox: ProcessSandbox, script: str, cwd: Path) -> tuple[int, str]:
    out = await run_captured(sandbox, ["sh", "-c", script], cwd=cwd, env=ENV, writable=[cwd], timeout_s=60)
    return out.exit_code, (out.stdout + out.stderr).decode()


async def test_sees_only_its_own_processes_and_files(tmp_path, process_sandbox):
    secret = tmp_path.parent / "outside.txt"
    secret.write_text("worker file")
    code, out = await sh(
        process_sandbox,
        f"ls /proc | grep -c '^[0-9]'; cat {secret} 2>&1; ls / | tr '\\n' ' '; echo; id -u; hostname",
        tmp_path,
    )
    lines = out.splitlines()
    assert code == 0
    assert int(lines[0]) <= 5  # its own few processes, not the host's
    assert "No such file or directory" in lines[1]
    assert not {"var", "home", "mnt", "srv"} & set(lines[2].split())  # a skeleton, not the host's root
    assert int(lines[3]) != os.geteuid()
    assert lines[4] == "agent-sandbox"


async def test_has_no_network_but_loopback(tmp_path, process_sandbox):
    code, out = await sh(
        process_sandbox, "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '", tmp_path
    )
    assert code == 0 and out.split() == ["lo"]


async def test_memory_and_process_limits_hold(tmp_path):
    if set(cgroup_support()) != {"memory", "pids"}:
        pytest.skip(f"this host gives the worker no memory/pids cgroup ({cgroup_support()})")
    sandbox = ProcessSandbox(SandboxLimits(memory_bytes=128 * 1024**2, max_processes=32))
    code, _ = await sh(sandbox, "python3 -c 'x = bytearray(512 * 1024 * 1024); print(len(x))'", tmp_path)
    assert code != 0  # killed by the memory cgroup
    code, out = await sh(sandbox, "for i in $(seq 100); do sleep 5 & done 2>&1; echo spawned", tmp_path)
    assert "fork" in out.lower() or "resource" in out.lower()


async def test_tmp_is_a_size_capped_tmpfs(tmp_path):
    sandbox = ProcessSandbox(SandboxLimits(tmp_bytes=16 * 1024**2))
    code, out = await sh(sandbox, "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; echo rc=$?", tmp_path)
    assert "No space left on device" in out


async def test_everything_it_started_ends_with_it(tmp_path, process_sandbox):
    marker = f"sandbox-orphan-{os.getpid()}"
    code, _ = await sh(process_sandbox, f"(setsid sh -c 'sleep 60; : {marker}' &); echo ok", tmp_path)
    assert code == 0
    assert _processes_with(marker) == []


def _processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_without_bubblewrap_agent_runs_are_refused_with_the_fix(monkeypatch):
    monkeypatch.setattr(process_sandbox, "bwrap_path", lambda: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install -y bubblewrap"):
        ProcessSandbox()
    assert issubclass(SandboxUnavailable, ValueError)  # the activities report it as a configuration error
