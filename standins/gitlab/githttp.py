"""git smart HTTP through `git http-backend`, one CGI process per request."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# group/sub/name.git/<service>; anything else is not a git route.
GIT_ROUTE = re.compile(r"^/((?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)+[A-Za-z0-9_][A-Za-z0-9_.-]*)\.git(/.*)$")
SERVICES = {"/info/refs", "/git-upload-pack", "/git-receive-pack"}
TIMEOUT_S = 300


@dataclass
class CgiResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def run_backend(
    project_root: Path,
    repo_path: str,
    service_path: str,
    *,
    method: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    remote_user: str,
) -> CgiResponse:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(project_root),
        "REQUEST_METHOD": method,
        "PATH_INFO": f"/{repo_path}.git{service_path}",
        "QUERY_STRING": query,
        "CONTENT_TYPE": headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": remote_user,
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "GATEWAY_INTERFACE": "CGI/1.1",
    }
    if "git-protocol" in headers:
        env["GIT_PROTOCOL"] = headers["git-protocol"]
    if "content-encoding" in headers:
        env["HTTP_CONTENT_ENCODING"] = headers["content-encoding"]
    proc = subprocess.run(
        ["git", "http-backend"], input=body, capture_output=True, env=env, timeout=TIMEOUT_S, check=False
    )
    return parse_cgi(proc.stdout)


def parse_cgi(output: bytes) -> CgiResponse:
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = output.partition(b"\n\n")
    if not sep:
        return CgiResponse(502, [("Content-Type", "text/plain")], b"git http-backend gave no headers\n")
    response = CgiResponse(200, body=body)
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        value = value.strip()
        if name.lower() == "status":
            response.status = int(value.split()[0])
        elif name:
            response.headers.append((name, value))
    return response
