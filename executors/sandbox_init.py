"""The first program inside a process sandbox (executors/process_sandbox.py), run as the sandbox's user.

`python -I sandbox_init.py [--limit NAME=N ...] [--forward PORT=SOCKET] -- COMMAND...`

- sets hard and soft resource limits (an unprivileged process cannot raise a hard limit again);
- with `--forward`, listens on 127.0.0.1:PORT of the sandbox's own loopback and relays every
  connection to the unix socket SOCKET (the model proxy's socket, bound into the sandbox): the
  sandbox has no other network, so this is the only way out, and it leads only to the proxy;
- runs COMMAND as its child and exits with its status. When this process ends, bubblewrap's init
  ends and the kernel kills everything left in the PID namespace.

Standard library only (it runs with -I, before anything else of the service is importable).
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import sys
import threading

LIMITS = {
    "nproc": resource.RLIMIT_NPROC,
    "nofile": resource.RLIMIT_NOFILE,
    "fsize": resource.RLIMIT_FSIZE,
    "core": resource.RLIMIT_CORE,
}
CHUNK = 65536


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _relay(client: socket.socket, target: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(target)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
    back.start()
    _pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _serve(listener: socket.socket, target: str) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_relay, args=(client, target), daemon=True).start()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sandbox_init")
    parser.add_argument("--limit", action="append", default=[], help="NAME=N (nproc, nofile, fsize, core)")
    parser.add_argument("--forward", default="", help="PORT=UNIX_SOCKET")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    for item in args.limit:
        name, value = item.split("=", 1)
        resource.setrlimit(LIMITS[name], (int(value), int(value)))
    if args.forward:
        port, target = args.forward.split("=", 1)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(port)))  # listening before the command starts: no race
        listener.listen(64)
        threading.Thread(target=_serve, args=(listener, target), daemon=True).start()
    else:
        # Nothing to serve: become the command (one process less in the sandbox).
        os.execvp(command[0], command)  # noqa: S606 (argv from the service, never a shell string)
    pid = os.fork()
    if pid == 0:
        listener.close()
        os.execvp(command[0], command)  # noqa: S606
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: os.kill(pid, number))
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by a signal: 128 + its number, as a shell says


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
