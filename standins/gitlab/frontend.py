"""The HTTP front: body reading (incl. chunked), auth, faults, logging, REST and git dispatch."""

from __future__ import annotations

import base64
import binascii
import json
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from standins.gitlab import rest
from standins.gitlab.errors import ApiError
from standins.gitlab.faults import Fault
from standins.gitlab.githttp import GIT_ROUTE, SERVICES, run_backend
from standins.gitlab.models import RequestRecord, User
from standins.gitlab.params import nest, parse_body

if TYPE_CHECKING:
    from standins.gitlab.server import GitLabStandIn

MAX_REST_BODY = 10 * 1024 * 1024
MAX_GIT_BODY = 512 * 1024 * 1024
MAX_CHUNK_LINE = 1024


class BodyTooLarge(Exception):
    pass


class BadBody(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm on, the body of every answer on
    # a kept-alive connection waited for the client's delayed ACK, 40-50 ms a request (a review's
    # 30 GitLab calls took over a second of nothing; GitLab's nginx sets TCP_NODELAY).
    disable_nagle_algorithm = True
    standin: GitLabStandIn  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the request log is `GitLabStandIn.requests`."""

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    # --- plumbing -----------------------------------------------------------------------------

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadBody("invalid Content-Length") from None
        if length < 0:
            raise BadBody("invalid Content-Length")
        if length > limit:
            raise BodyTooLarge
        return self.rfile.read(length)

    def _read_chunked(self, limit: int) -> bytes:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadBody("malformed chunk size") from None
            if size == 0:
                # Skip trailers up to the blank line that ends the body.
                while self.rfile.readline(MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                raise BodyTooLarge
            parts.append(self.rfile.read(size))
            self.rfile.readline(MAX_CHUNK_LINE)

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        if status == 204:
            # No Content: no body and no Content-Type, as GitLab answers (clients parse nothing).
            self._send(status, b"", list((headers or {}).items()))
            return
        if isinstance(payload, bytes):
            content, ctype = payload, "text/plain; charset=utf-8"
        else:
            content = b"" if payload is None else json.dumps(payload).encode()
            ctype = "application/json"
        self._send(status, content, [("Content-Type", ctype), *(headers or {}).items()])

    def _record(self, status: int, user: User | None) -> None:
        """Log the request before its answer is sent: a client that has its answer finds it logged."""
        path = urlsplit(self.path).path
        received = getattr(self, "_received", 0.0)
        with self.standin.store.lock:
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            record = RequestRecord(
                self.command, path, status, user.username if user else None, chunked,
                at=received, seconds=time.monotonic() - received if received else 0.0,
            )  # fmt: skip
            self.standin.requests.append(record)

    # --- dispatch -----------------------------------------------------------------------------

    def _handle(self) -> None:
        self._received = time.monotonic()
        path = urlsplit(self.path).path
        git = GIT_ROUTE.match(path)
        if git and git.group(2) in SERVICES:
            self._handle_git(git.group(1), git.group(2))
        elif path.startswith("/api/v4/"):
            self._handle_rest(path)
        else:
            self.close_connection = True  # body (if any) left unread
            self._record(404, None)
            self._send_json(404, {"error": "404 Not Found"})

    def _token_user(self) -> User | None:
        token = self.headers.get("PRIVATE-TOKEN")
        auth = self.headers.get("Authorization", "")
        if token is None and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        return self.standin.store.user_by_token(token)

    def _handle_rest(self, path: str) -> None:
        user = None
        try:
            # Read the body before anything can fail so a kept-alive connection stays in sync.
            raw_body = self._read_body(MAX_REST_BODY)
            user = self._token_user()
            if user is None:
                raise ApiError(401, "401 Unauthorized")
            fault = self.standin.faults.next_fault(path, self.command)
            if fault is not None:
                time.sleep(fault.stall_s)
                if fault.status is not None and not fault.lose_reply:
                    raise_fault(fault.status, _retry_after(fault))
            body = parse_body(raw_body, self.headers.get("Content-Type", ""))
            query = nest(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            store = self.standin.store

            def make_ctx(args: list[str]) -> rest.Ctx:
                return rest.Ctx(store, user, self.command, path, query, body, args)

            method = "GET" if self.command == "HEAD" else self.command
            result = rest.dispatch(make_ctx, method, path)
            status, payload, headers = result if len(result) == 3 else (*result, {})
            if fault is not None and fault.lose_reply:
                self._lose_reply(fault, user)
                return
            self._record(status, user)
            self._send_json(status, payload, headers)
        except _FaultResponse as exc:
            self._record(exc.status, user)
            self._send_json(exc.status, {"message": f"{exc.status} Injected fault"}, exc.headers)
        except ApiError as exc:
            extra = {"WWW-Authenticate": 'Bearer realm="GitLab"'} if exc.status == 401 else {}
            self._record(exc.status, user)
            self._send_json(exc.status, exc.body, extra)
        except BodyTooLarge:
            self.close_connection = True
            self._record(413, user)
            self._send_json(413, {"message": "413 Request Entity Too Large"})
        except BadBody as exc:
            self.close_connection = True
            self._record(400, user)
            self._send_json(400, {"message": f"400 Bad request - {exc}"})

    def _lose_reply(self, fault: Fault, user: User | None) -> None:
        """The request took effect; the client gets `fault.status`, or a closed connection."""
        if fault.status is None:
            self.close_connection = True
            self._record(0, user)
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._record(fault.status, user)
        self._send_json(fault.status, {"message": f"{fault.status} Injected fault"}, _retry_after(fault))

    def _lose_git_reply(self, fault: Fault, user: User | None) -> None:
        if fault.status is None:
            self.close_connection = True
            self._record(0, user)
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._record(fault.status, user)
        self._send(fault.status, b"Injected fault\n", list(_retry_after(fault).items()))

    def _basic_user(self) -> User | None:
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, _, password = decoded.partition(":")
        return self.standin.store.user_by_token(password)

    def _handle_git(self, repo_path: str, service: str) -> None:
        store = self.standin.store
        user = self._basic_user()
        project = store.project_by_repo_path(repo_path)
        if user is None or project is None:
            # The body stays unread, so this connection cannot be reused.
            self.close_connection = True
        if user is None:
            self._record(401, None)
            self._send(401, b"HTTP Basic: Access denied\n", [("WWW-Authenticate", 'Basic realm="GitLab"')])
            return
        if project is None:
            self._record(404, user)
            self._send(404, b"The project you were looking for could not be found.\n", [])
            return
        try:
            body = self._read_body(MAX_GIT_BODY)
        except (BodyTooLarge, BadBody) as exc:
            self.close_connection = True
            self._record(413 if isinstance(exc, BodyTooLarge) else 400, user)
            self._send(413 if isinstance(exc, BodyTooLarge) else 400, b"bad request body\n", [])
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        pushing = service == "/git-receive-pack"
        # Only scripted faults reach git (random ones are for REST): a push refused before it is
        # applied, or applied and its reply lost.
        fault = self.standin.faults.next_fault(urlsplit(self.path).path, self.command, targeted_only=True)
        if fault is not None and fault.status is not None and not fault.lose_reply:
            self._record(fault.status, user)
            self._send(fault.status, b"Injected fault\n", list(_retry_after(fault).items()))
            return
        if pushing:
            self.standin.push_lock.acquire()
        try:
            before = project.repo.branches() if pushing else {}
            response = run_backend(
                store.repos_root, repo_path, service, method=self.command,
                query=urlsplit(self.path).query, headers=headers, body=body, remote_user=user.username,
            )  # fmt: skip
            if pushing:
                after = project.repo.branches()
                moves = {b: (before.get(b), after.get(b)) for b in set(before) | set(after)}
                store.branches_moved(project, moves, user)
        finally:
            if pushing:
                self.standin.push_lock.release()
        if fault is not None and fault.lose_reply:
            self._lose_git_reply(fault, user)
            return
        self._record(response.status, user)
        self._send(response.status, response.body, response.headers)


class _FaultResponse(Exception):
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(status)
        self.status, self.headers = status, headers


def _retry_after(fault: Fault) -> dict[str, str]:
    return {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}


def raise_fault(status: int, headers: dict[str, str]) -> None:
    raise _FaultResponse(status, headers)
