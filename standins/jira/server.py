"""`JiraStandIn`: a stateful fake Jira (Cloud, or Server/Data Center) on 127.0.0.1 for the real
`jira` client library.

    with JiraStandIn() as jira_server:
        jira_server.add_account("agent@example.com", "token")
        jira_server.add_project("PROJ", "Project")
        key = jira_server.create_issue("PROJ", "Add a health check", adf_doc, status="AI Ready")
        client = JIRA(server=jira_server.url, basic_auth=("agent@example.com", "token"))

HTTP contract: paths under /rest/api/2, /rest/api/3 and /rest/api/latest (served as 2); v3 bodies are
ADF. `deployment_type="Server"` is Jira Server / Data Center as the service meets it: REST v2 only
(every /rest/api/3 path and the Cloud-only `search/jql` answer 404), bodies are wiki-markup strings
(an ADF document is refused, also by `create_issue`), and users have a `name`, no `accountId`. Authentication is Basic (email:token) or Bearer (token); without credentials only serverInfo
answers, wrong credentials get 401 everywhere. Errors use Jira's shape
`{"errorMessages": [...], "errors": {...}}`: malformed JSON 400, bodies over `MAX_BODY_BYTES` 413,
unknown issue 404, unknown route 404, wrong method 405, a bug in the stand-in 500 (never a dead thread).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from standins.jira import routes
from standins.jira.faults import FaultInjector
from standins.jira.models import (
    Account,
    Body,
    Comment,
    Issue,
    JiraApiError,
    RemoteLink,
    RequestRecord,
    StatusCategory,
    TransitionRecord,
)
from standins.jira.store import JiraStore, TransitionSpec

MAX_BODY_BYTES = 1 << 20
_API_PATH = re.compile(r"/rest/api/(?P<version>2|3|latest)/(?P<rest>.*?)/?")
_APPLINKS = "/rest/applinks/latest/listApplicationlinks"
_UNAUTHENTICATED = "Client must be authenticated to access this resource."
LOG = logging.getLogger("standins.jira")


class JiraStandIn:
    """One Jira instance: state, fault plan and an HTTP server thread (started by `start()`)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        deployment_type: Literal["Cloud", "Server"] = "Cloud",
        max_results_cap: int = 100,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if max_results_cap < 1:
            raise ValueError("max_results_cap must be at least 1")
        self.host = host
        self.port = port
        self.deployment_type = deployment_type
        self.max_results_cap = max_results_cap
        self.store = JiraStore(clock)
        self.faults = FaultInjector()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> JiraStandIn:
        if self._server is not None:
            raise RuntimeError("the Jira stand-in is running already")
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.standin = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="jira-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> JiraStandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Jira stand-in is not started")
        return f"http://{self.host}:{self.port}"

    # --- Python API (delegates to the store and the fault injector) -----------------------------------

    def add_account(self, email: str, token: str, display_name: str | None = None) -> Account:
        return self.store.add_account(email, token, display_name)

    @property
    def cloud(self) -> bool:
        return self.deployment_type == "Cloud"

    def add_project(self, key: str, name: str) -> None:
        self.store.add_project(key, name)

    def add_group_member(self, group: str, email: str) -> None:
        self.store.add_group_member(group, email)

    def add_role_member(self, project: str, role: str, email: str) -> None:
        """Put an account in a project role (every project has Administrators, Developers, Users)."""
        self.store.add_role_member(project, role, email)

    def comment_as(self, key: str, body: Body, email: str) -> Comment:
        """A comment written by a person (an account added with `add_account`)."""
        self._check_body(body)
        return self.store.add_comment(key, body, self.store.account(email).user)

    def add_workflow(
        self,
        statuses: Sequence[str | tuple[str, StatusCategory]],
        transitions: Sequence[TransitionSpec],
        *,
        project: str | None = None,
    ) -> None:
        self.store.add_workflow(statuses, transitions, project=project)

    def create_issue(
        self,
        project: str,
        summary: str,
        description_adf_or_text: Body | None = None,
        status: str | None = None,
        labels: Iterable[str] = (),
        **extra: Any,
    ) -> str:
        """Create an issue as a person would; `status` defaults to the workflow's first status."""
        if description_adf_or_text is not None:
            self._check_body(description_adf_or_text)
        return self.store.create_issue(project, summary, description_adf_or_text, status, labels, **extra)

    def _check_body(self, body: Body) -> None:
        if not self.cloud and not isinstance(body, str):
            raise ValueError("Jira Server/Data Center stores wiki markup (a str), not an ADF document")

    def set_status(self, key: str, status: str) -> None:
        self.store.set_status(key, status)

    def issue(self, key: str) -> Issue:
        return self.store.issue(key)

    def comments(self, key: str) -> list[Comment]:
        return self.store.comments(key)

    def remote_links(self, key: str) -> list[RemoteLink]:
        return self.store.remote_links(key)

    @property
    def transition_log(self) -> list[TransitionRecord]:
        return self.store.transition_log

    @property
    def requests(self) -> list[RequestRecord]:
        return self.store.requests

    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: int | None = None,
        *,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Fail the next `n` requests (only those matching `method` / `path_contains` when given)."""
        self.faults.fail_next(n, status, retry_after, method=method, path_contains=path_contains)

    def lose_next(
        self, n: int, status: int | None = 502, *, method: str | None = None, path_contains: str | None = None
    ) -> None:
        """Process the next `n` matching requests, then answer `status` (None: close the connection)."""
        self.faults.lose_next(n, status, method=method, path_contains=path_contains)

    def inject_faults(
        self, rate: float, statuses: Sequence[int] = (500, 503), seed: int = 0, lost_share: float = 0.0
    ) -> None:
        self.faults.inject_faults(rate, statuses, seed, lost_share)

    def clear_faults(self) -> None:
        self.faults.clear_faults()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "JiraStandIn/1.0"
    timeout = 30  # idle keep-alive connections must not pin handler threads forever
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls

    @property
    def standin(self) -> JiraStandIn:
        return self.server.standin  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        LOG.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        account: Account | None = None
        body: Any = None
        headers: dict[str, str] = {}
        try:
            fault = self.standin.faults.pick(self.command, url.path)
            if fault is not None and not fault.lose_reply:
                self._discard_body()
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                raise _Answer(fault.status, {"errorMessages": ["Injected fault"], "errors": {}}, headers)
            raw = self._read_body()
            account = self._authenticate(url.path)
            body = _parse_json(raw)
            status, payload = self._dispatch(url.path, query, body, account)
            if fault is not None:  # a lost reply: the effect happened, the answer does not arrive
                status, payload = fault.status or 0, {"errorMessages": ["Injected fault"], "errors": {}}
        except _Answer as answer:
            status, payload, headers = answer.status, answer.payload, answer.headers
        except JiraApiError as error:
            status, payload = error.status, error.body()
        except Exception:  # a stand-in bug must answer 500, not kill the connection silently
            LOG.exception("Jira stand-in failed on %s %s", self.command, self.path)
            status, payload = 500, {"errorMessages": ["Internal server error"], "errors": {}}
        # Logged before answering, so a test that has its response also sees the request in the log.
        self.standin.store.log_request(
            RequestRecord(
                method=self.command,
                path=url.path,
                query=query,
                account=account.user.email if account else None,
                status=status,
                body=body,
            )
        )
        if status == 0:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(status, payload, headers)

    def _discard_body(self) -> None:
        length = self._content_length()
        if length > MAX_BODY_BYTES:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    def _content_length(self) -> int:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise _Answer(400, {"errorMessages": ["Invalid Content-Length."], "errors": {}})
        return length

    def _read_body(self) -> bytes:
        length = self._content_length()
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would be parsed as the next request
            raise _Answer(
                413, {"errorMessages": [f"Request body over {MAX_BODY_BYTES} bytes."], "errors": {}}
            )
        return self.rfile.read(length) if length else b""

    def _authenticate(self, path: str) -> Account | None:
        header = self.headers.get("Authorization")
        if header is None:
            if path.rstrip("/").endswith("/serverInfo"):
                return None  # Jira answers serverInfo anonymously
            raise _Answer(401, {"errorMessages": [_UNAUTHENTICATED], "errors": {}})
        scheme, _, credentials = header.partition(" ")
        store = self.standin.store
        account = None
        if scheme.lower() == "basic":
            try:
                email, _, token = base64.b64decode(credentials, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                email, token = "", ""
            account = store.account_by_basic(email, token)
        elif scheme.lower() == "bearer":
            account = store.account_by_bearer(credentials.strip())
        if account is None:
            raise _Answer(401, {"errorMessages": [_UNAUTHENTICATED], "errors": {}})
        return account

    def _dispatch(
        self, path: str, query: dict[str, list[str]], body: Any, account: Account | None
    ) -> tuple[int, Any]:
        if path == _APPLINKS and self.command == "GET":
            return 200, []  # no application links: the client then sends remote links as given
        match = _API_PATH.fullmatch(path)
        if match is None:
            raise JiraApiError(404, [f"null for uri: {self.standin.url}{path}"])
        version = "3" if match["version"] == "3" else "2"
        cloud = self.standin.cloud
        if not cloud and (version == "3" or match["rest"].rstrip("/") == "search/jql"):
            # Server/DC has no REST v3 and no enhanced search: its answer is a plain 404.
            raise JiraApiError(404, [f"null for uri: {self.standin.url}{path}"])
        request = routes.Request(self.command, match["rest"], version, query, body, account, self.standin.url)
        if request.path == "serverInfo" and self.command == "GET":
            return routes.server_info(self.standin.store, request, self.standin.deployment_type)
        path_matched = False
        for method, pattern, handler in routes.ROUTES:
            found = pattern.fullmatch(request.path)
            if found is None:
                continue
            path_matched = True
            if method == self.command:
                request.params = found.groupdict()
                status, payload = handler(self.standin.store, request, self.standin.max_results_cap)
                return status, payload if cloud else _server_users(payload)
        if path_matched or request.path == "serverInfo":
            raise JiraApiError(405, [f"Method {self.command} is not allowed for {path}."])
        raise JiraApiError(404, [f"null for uri: {self.standin.url}{path}"])

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if data:
            self.wfile.write(data)


def _server_users(payload: Any) -> Any:
    """Server/DC shapes of user objects: `name` and `key`, no Cloud `accountId` (iterative walk)."""
    stack = [payload]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "accountId" in node:
                name = node.pop("accountId")
                node.pop("accountType", None)
                node.setdefault("name", name)
                node.setdefault("key", name)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return payload


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise _Answer(400, {"errorMessages": [f"Invalid JSON body: {error}"], "errors": {}}) from None


class _Answer(Exception):
    """An early HTTP answer (fault, auth, framing) that is not a Jira domain error."""

    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload
        self.headers = headers or {}
