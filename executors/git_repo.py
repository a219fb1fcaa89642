"""git, run as a subprocess, with the GitLab token only ever in a per-command `-c http.extraHeader`.

The token never lands in a URL, in `.git/config`, in the environment of the agent, or in an error
message (stderr is scrubbed of it before it is raised).
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from opentelemetry import trace

GIT_TIMEOUT_S = 300
# The author of commits in clones nobody pushes from (the agent's own sandbox clones). Commits the
# service pushes are made with AGENT_AUTHOR_NAME / AGENT_AUTHOR_EMAIL (`author=` of `clone`).
AGENT_AUTHOR = ("Copilot Agent", "copilot-agent@noreply.gitlab.com")


class GitError(Exception):
    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


_TRANSIENT = (
    "could not resolve host",
    "connection refused",
    "timed out",
    "the remote end hung up",
    "http 5",
    "error: 5",
    "returned error: 5",
    "early eof",
    "rpc failed",
    "429",
    "failed to connect",
    "couldn't connect to server",
    "connection reset",
)


def _basic(token: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"oauth2:{token}".encode()).decode()


def auth_args(token: str | None) -> list[str]:
    """`-c http.extraHeader=...` for a git command line (tests and one-off scripts; the service
    itself passes the header through the environment, see `_env`)."""
    return ["-c", f"http.extraHeader={_basic(token)}"] if token else []


def _env(token: str | None = None) -> dict[str, str]:
    # Never prompt for credentials, never read the user's or system git config. The auth header
    # goes in GIT_CONFIG_* variables, not argv: a command line is world-readable in /proc and `ps`.
    auth = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": _basic(token),
    }
    return {
        **(auth if token else {}),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 (git needs some HOME; it reads nothing there)
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "LC_ALL": "C",
    }


_tracer = trace.get_tracer(__name__)
TRACED = frozenset({"clone", "fetch", "push", "ls-remote", "apply", "commit"})


def git(
    repo: Path | None,
    *args: str,
    token: str | None = None,
    check: bool = True,
    timeout: float = GIT_TIMEOUT_S,
    input: str | None = None,  # noqa: A002 (subprocess's name for it)
) -> str:
    cmd = ["git"]
    if repo is not None:
        cmd += ["-C", str(repo)]
    cmd += list(args)
    sub = args[0] if args else ""
    # A span for what talks to the git server or changes the tree (the seed's git.clone/push/
    # apply_patch); only the subcommand is recorded, never an argument (URLs, paths, messages).
    span = _tracer.start_span(f"git {sub}", attributes={"git.subcommand": sub}) if sub in TRACED else None
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=_env(token), check=False, input=input
        )
    except subprocess.TimeoutExpired:
        if span is not None:
            span.set_status(trace.StatusCode.ERROR, "timed out")
            span.end()
        raise GitError(f"git {args[0]} timed out after {timeout:.0f}s", transient=True) from None
    if span is not None:
        span.set_attribute("process.exit.code", out.returncode)
        if out.returncode != 0:
            span.set_status(trace.StatusCode.ERROR, f"exit {out.returncode}")
        span.end()
    if check and out.returncode != 0:
        stderr = out.stderr
        if token:
            stderr = stderr.replace(token, "[REDACTED]")
            stderr = stderr.replace(base64.b64encode(f"oauth2:{token}".encode()).decode(), "[REDACTED]")
        lowered = stderr.lower()
        transient = any(marker in lowered for marker in _TRANSIENT)
        raise GitError(f"git {args[0]} failed: {stderr.strip()[-500:]}", transient=transient)
    return out.stdout


def clone(
    url: str,
    dest: Path,
    *,
    token: str | None,
    sha: str,
    branches: list[str] | None = None,
    author: tuple[str, str] = AGENT_AUTHOR,
) -> Path:
    """Clone `url` into `dest` and check out `sha` detached. `branches` limits what is fetched;
    `author` (name, e-mail) is who commits made in the clone are by."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if branches:
        git(None, "init", "--quiet", str(dest))
        git(dest, "remote", "add", "origin", url)
        refspecs = [f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in dict.fromkeys(branches)]
        git(dest, "fetch", "--quiet", "--no-tags", "origin", *refspecs, token=token)
    else:
        git(None, "clone", "--quiet", "--no-checkout", url, str(dest), token=token)
    if not has_commit(dest, sha):
        git(dest, "fetch", "--quiet", "--no-tags", "origin", sha, token=token)
    git(dest, "checkout", "--quiet", "--detach", sha)
    git(dest, "config", "user.name", author[0])
    git(dest, "config", "user.email", author[1])
    return dest


def has_commit(repo: Path, sha: str) -> bool:
    probe = ["git", "-C", str(repo), "cat-file", "-e", f"{sha}^{{commit}}"]
    return subprocess.run(probe, capture_output=True, env=_env()).returncode == 0


def is_ancestor(repo: Path, older: str, newer: str) -> bool:
    result = subprocess.run(
        ["git", "-C", str(repo), "merge-base", "--is-ancestor", older, newer], capture_output=True, env=_env()
    )
    return result.returncode == 0
