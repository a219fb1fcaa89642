"""`python -m standins.kubernetes.pid1 -- CMD...`: a container's "PID 1" for the stand-in.

In a real pod each container has its own PID namespace: when its main process exits, the kernel
kills every other process in it, however it detached itself (setsid, double fork). The stand-in runs
containers as plain local processes, so it puts this small reaper in front of each: it becomes a
child subreaper (prctl PR_SET_CHILD_SUBREAPER), runs CMD, forwards SIGTERM/SIGINT to it, and once CMD
has exited kills whatever of its descendants is left (orphans are reparented to the reaper), then
exits with CMD's status as a runtime would (128 + signal when CMD died of one).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # field 4 of stat: the parent's pid
            found.append(int(entry))
    return found


def _reap_all() -> None:
    """Kill every remaining descendant (they are, or become, our children) and reap them."""
    me = os.getpid()
    for _ in range(200):  # bounded: a fork bomb cannot keep the container "running" forever
        children = _children(me)
        if not children:
            return
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.01)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("pid1: no command", file=sys.stderr)
        return 127
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)  # noqa: S606 - the container command, as given
        except OSError as error:
            print(f"pid1: cannot start {argv[0]}: {error}", file=sys.stderr)
        os._exit(128)

    def forward(number: int, _frame: object) -> None:
        try:
            os.kill(child, number)
        except ProcessLookupError:
            pass  # it has just been reaped

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    _, status = os.waitpid(child, 0)
    _reap_all()
    returncode = os.waitstatus_to_exitcode(status)
    return 128 - returncode if returncode < 0 else returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
