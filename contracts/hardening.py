"""Process hardening shared by the API and the worker.

`make_undumpable` sets PR_SET_DUMPABLE=0: other processes of the same Unix user (such as the agent's
shell, with the local executor) can no longer read this process's `/proc/<pid>/environ`, memory or
attach a debugger to it, so the tokens the worker holds in its environment stay out of their reach.
It also disables core dumps of the process. Root can still read everything: run as a non-root user
(the image does, UID 1000). Linux only; elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _prctl():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl


def make_undumpable() -> bool:
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


def is_dumpable() -> bool:
    prctl = _prctl()
    return prctl is None or prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0
