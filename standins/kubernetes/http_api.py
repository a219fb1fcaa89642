"""The REST surface: the paths and query parameters the official `kubernetes` client uses for Jobs,
Pods, pod logs and Secrets, with Kubernetes `Status` bodies for every error.

Hostile or malformed requests are answered, never crash the server: unknown paths 404, wrong methods
405, bodies over 3 MiB 413 (the API server's limit), JSON that is not an object 400, invalid objects 422.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from standins.kubernetes.controller import JobController
from standins.kubernetes.job_spec import admit_job
from standins.kubernetes.meta import (
    label_name_errors,
    parse_field_selector,
    parse_label_selector,
    selected,
    subdomain_errors,
)
from standins.kubernetes.pod_runner import PodRunner
from standins.kubernetes.status import ApiError, Cause, already_exists, bad_request, invalid, not_found
from standins.kubernetes.store import Store

_log = logging.getLogger(__name__)
MAX_BODY_BYTES = 3 * 1024 * 1024
MAX_SECRET_BYTES = 1024 * 1024
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_NS = r"(?P<ns>[^/]+)"
_NAME = r"(?P<name>[^/]+)"
_ORPHAN_WARNING = (
    '299 - "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background '
    'to remove them or set propagationPolicy=Orphan to suppress this warning"'
)


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: Store, controller: JobController) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.controller = controller


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def _int_param(query: dict[str, str], name: str, minimum: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name}: invalid value {raw!r}: must be an integer") from None
    if value < minimum:
        raise bad_request(f"{name}: invalid value {value}: must be greater than or equal to {minimum}")
    return value


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: without TCP_NODELAY every answer on a kept-alive
    # connection waits ~40 ms for the client's delayed ACK (the API server's Go stack sets it).
    disable_nagle_algorithm = True
    server: StandinServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Silence per-request logging; tests assert on state, not on access logs."""

    # --- plumbing -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _routes(self) -> list[tuple[str, dict[str, Callable[..., None]]]]:
        return [
            (r"/version", {"GET": self._version}),
            (r"/api", {"GET": self._api_versions}),
            (r"/apis", {"GET": self._api_groups}),
            (r"/apis/batch/v1/jobs", {"GET": lambda q: self._list("jobs", None, q)}),
            (rf"/apis/batch/v1/namespaces/{_NS}/jobs", {"GET": self._list_jobs, "POST": self._create_job}),
            (
                rf"/apis/batch/v1/namespaces/{_NS}/jobs/{_NAME}",
                {"GET": self._get_job, "DELETE": self._delete_job},
            ),
            (rf"/apis/batch/v1/namespaces/{_NS}/jobs/{_NAME}/status", {"GET": self._get_job}),
            (r"/api/v1/pods", {"GET": lambda q: self._list("pods", None, q)}),
            (rf"/api/v1/namespaces/{_NS}/pods", {"GET": lambda q, ns: self._list("pods", ns, q)}),
            (rf"/api/v1/namespaces/{_NS}/pods/{_NAME}", {"GET": self._get_pod}),
            (rf"/api/v1/namespaces/{_NS}/pods/{_NAME}/log", {"GET": self._pod_log}),
            (rf"/api/v1/namespaces/{_NS}/secrets", {"GET": self._list_secrets, "POST": self._create_secret}),
            (rf"/api/v1/namespaces/{_NS}/secrets/{_NAME}", {"GET": self._get_secret}),
        ]

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            for pattern, handlers in self._routes():
                match = re.fullmatch(pattern, url.path.rstrip("/") or "/")
                if match is None:
                    continue
                handler = handlers.get(method)
                if handler is None:
                    self._drain()
                    raise ApiError(
                        405, "MethodNotAllowed", f"the server does not allow this method ({method})"
                    )
                params = match.groupdict()
                if "ns" in params and label_name_errors(params["ns"]):
                    raise not_found("namespaces", "", params["ns"])
                handler(query, *params.values())
                return
            self._drain()
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        except ApiError as error:
            self._send_json(error.code, error.body())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:
            # A bug must not look like a hung server to the client: answer as the API server would.
            _log.exception("stand-in failed on %s %s", method, self.path)
            self.close_connection = True
            self._send_json(500, ApiError(500, "InternalError", f"stand-in error: {error!r}").body())

    def _content_length(self) -> int:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise bad_request("invalid Content-Length")
        return length

    def _drain(self) -> None:
        """Read an unwanted body so a keep-alive connection stays in sync."""
        length = self._content_length()
        if length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _body(self) -> Any:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise ApiError(411, "LengthRequired", "a Content-Length is required")
        length = self._content_length()
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(
                413, "RequestEntityTooLarge", f"request body of {length} bytes exceeds {MAX_BODY_BYTES}"
            )
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise bad_request(f"the body is not valid JSON: {error}") from None

    def _send_json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- discovery ----------------------------------------------------------------------------

    def _version(self, query: dict[str, str]) -> None:
        self._send_json(
            200,
            {
                "major": "1",
                "minor": "33",
                "gitVersion": "v1.33.0-standin",
                "gitCommit": "standin",
                "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.24",
                "compiler": "gc",
                "platform": "linux/amd64",
            },
        )

    def _api_versions(self, query: dict[str, str]) -> None:
        host, port = self.server.server_address[:2]
        address = {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{host}:{port}"}
        self._send_json(
            200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [address]}
        )

    def _api_groups(self, query: dict[str, str]) -> None:
        version = {"groupVersion": "batch/v1", "version": "v1"}
        group = {"name": "batch", "versions": [version], "preferredVersion": version}
        self._send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]})

    # --- Jobs and Pods ------------------------------------------------------------------------

    def _list_jobs(self, query: dict[str, str], namespace: str) -> None:
        self._list("jobs", namespace, query)

    def _list(self, resource: str, namespace: str | None, query: dict[str, str]) -> None:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))
        if _flag(query, "watch"):
            self._watch(resource, namespace, labels, fields, query)
            return
        items, version = self.server.store.list(resource, namespace, labels, fields)
        kind, api_version = ("JobList", "batch/v1") if resource == "jobs" else ("PodList", "v1")
        self._send_json(
            200,
            {
                "kind": kind,
                "apiVersion": api_version,
                "metadata": {"resourceVersion": str(version)},
                "items": items,
            },
        )

    def _watch(
        self, resource: str, namespace: str | None, labels: Any, fields: Any, query: dict[str, str]
    ) -> None:
        """Newline-delimited watch events until `timeoutSeconds`, the client leaving or shutdown.

        Without `resourceVersion` (or with "0") the current objects come first as ADDED, as the API
        server does; with one, only later changes; one that is no longer in the history gets an ERROR
        event with a 410 Gone Status, which the client's `Watch` turns into a relist.
        """
        store = self.server.store
        timeout = _int_param(query, "timeoutSeconds", 0)
        since = query.get("resourceVersion", "")
        if since not in ("", "0") and not since.isdigit():
            raise bad_request(f"invalid resourceVersion {since!r}")
        deadline = time.monotonic() + timeout if timeout is not None else None
        self._start_stream("application/json")
        if since in ("", "0"):
            items, last = store.list(resource, namespace, labels, fields)
            for item in items:
                self._chunk(json.dumps({"type": "ADDED", "object": item}).encode() + b"\n")
        else:
            last = int(since)
        while True:
            with store.condition:
                events = store.history_after(resource, last)
                if events == []:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if store.closed or (remaining is not None and remaining <= 0):
                        break
                    store.condition.wait(timeout=0.5 if remaining is None else min(0.5, remaining))
                    continue
            if events is None:
                gone = ApiError(410, "Expired", f"too old resource version: {last}")
                self._chunk(json.dumps({"type": "ERROR", "object": gone.body()}).encode() + b"\n")
                break
            for event in events:
                last = event.resource_version
                if namespace is not None and event.object["metadata"]["namespace"] != namespace:
                    continue
                if selected(event.object, labels, fields):
                    self._chunk(json.dumps({"type": event.type, "object": event.object}).encode() + b"\n")
        self._end_stream()

    def _create_job(self, query: dict[str, str], namespace: str) -> None:
        job = admit_job(namespace, self._body())
        if query.get("dryRun") == "All":
            self._send_json(201, job)
            return
        self._send_json(201, self.server.controller.create(job))

    def _get_job(self, query: dict[str, str], namespace: str, name: str) -> None:
        job = self.server.store.get("jobs", namespace, name)
        if job is None:
            raise not_found("jobs", "batch", name)
        self._send_json(200, job)

    def _delete_job(self, query: dict[str, str], namespace: str, name: str) -> None:
        body = self._body() if self._content_length() else {}
        if not isinstance(body, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        policy = query.get("propagationPolicy") or body.get("propagationPolicy")
        grace = _int_param(query, "gracePeriodSeconds", 0)
        if grace is None and isinstance(body.get("gracePeriodSeconds"), int):
            grace = max(0, body["gracePeriodSeconds"])
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise bad_request(f"invalid propagationPolicy {policy!r}: use Orphan, Background or Foreground")
        result = self.server.controller.delete(namespace, name, policy or "Orphan", grace)
        # batch/v1 keeps the historic default of orphaning pods, and says so in a warning header.
        self._send_json(200, result, {"Warning": _ORPHAN_WARNING} if policy is None else None)

    def _get_pod(self, query: dict[str, str], namespace: str, name: str) -> None:
        pod = self.server.store.get("pods", namespace, name)
        if pod is None:
            raise not_found("pods", "", name)
        self._send_json(200, pod)

    def _log_target(self, query: dict[str, str], namespace: str, name: str) -> tuple[PodRunner, str]:
        pod = self.server.store.get("pods", namespace, name)
        runner = self.server.controller.pod_runner(namespace, name)
        if pod is None or runner is None:
            raise not_found("pods", "", name)
        apps = [c["name"] for c in runner.containers]
        inits = [c["name"] for c in runner.init_containers]
        container = query.get("container")
        if not container:
            if len(apps) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(apps)}]"
                    + (f" or one of the init containers: [{' '.join(inits)}]" if inits else "")
                )
            container = apps[0]
        if container not in apps + inits:
            raise bad_request(f"container {container} is not valid for pod {name}")
        state = runner.container_state(container)
        if state is None or "waiting" in state:
            reason = (state or {}).get("waiting", {}).get("reason", "ContainerCreating")
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        return runner, container

    def _pod_log(self, query: dict[str, str], namespace: str, name: str) -> None:
        runner, container = self._log_target(query, namespace, name)
        tail = _int_param(query, "tailLines", 0)
        limit = _int_param(query, "limitBytes", 1)
        path = runner.log_path(container)
        if not _flag(query, "follow"):
            data = _select(path.read_bytes() if path.exists() else b"", tail, limit)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._start_stream("text/plain")
        sent = 0
        with open(path, "rb") as log:
            first = _select(log.read(), tail, None)
            while True:
                if first is not None:
                    chunk, first = first, None
                else:
                    still_running = "running" in (runner.container_state(container) or {})
                    chunk = log.read()
                    if not chunk and not still_running:
                        break
                    if not chunk:
                        time.sleep(0.05)
                        continue
                if limit is not None:
                    chunk = chunk[: max(0, limit - sent)]
                self._chunk(chunk)
                sent += len(chunk)
                if limit is not None and sent >= limit:
                    break
        self._end_stream()

    # --- Secrets ------------------------------------------------------------------------------

    def _create_secret(self, query: dict[str, str], namespace: str) -> None:
        body = self._body()
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise bad_request("expected a Secret object with metadata")
        name = body["metadata"].get("name")
        if not isinstance(name, str) or not name:
            raise invalid("Secret", "", "", [Cause("metadata.name", "FieldValueRequired", "Required value")])
        causes = [Cause("metadata.name", "FieldValueInvalid", m) for m in subdomain_errors(name)]
        data: dict[str, bytes] = {}
        for key, value in (body.get("data") or {}).items():
            try:
                data[key] = base64.b64decode(str(value), validate=True)
            except binascii.Error as error:
                raise bad_request(f"illegal base64 data in data[{key}]: {error}") from None
        for key, value in (body.get("stringData") or {}).items():
            data[key] = str(value).encode()
        for key in data:
            if not _SECRET_KEY.match(key):
                causes.append(
                    Cause(
                        f"data[{key}]",
                        "FieldValueInvalid",
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
        if sum(len(v) for v in data.values()) > MAX_SECRET_BYTES:
            causes.append(
                Cause("data", "FieldValueTooLong", f"Too long: must have at most {MAX_SECRET_BYTES} bytes")
            )
        if causes:
            raise invalid("Secret", "", name, causes)
        store = self.server.store
        with store.condition:
            if store.secret(namespace, name) is not None:
                raise already_exists("secrets", "", name)
            store.put_secret(namespace, name, data)
        self._send_json(201, _secret_object(namespace, name, data))

    def _get_secret(self, query: dict[str, str], namespace: str, name: str) -> None:
        data = self.server.store.secret(namespace, name)
        if data is None:
            raise not_found("secrets", "", name)
        self._send_json(200, _secret_object(namespace, name, data))

    def _list_secrets(self, query: dict[str, str], namespace: str) -> None:
        store = self.server.store
        items = []
        for name in store.secret_names(namespace):
            data = store.secret(namespace, name)
            if data is not None:
                items.append(_secret_object(namespace, name, data))
        self._send_json(200, {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": items})


def _secret_object(namespace: str, name: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }


def _select(data: bytes, tail_lines: int | None, limit_bytes: int | None) -> bytes:
    """kubelet's order: keep the last `tailLines` lines, then cut to `limitBytes`."""
    if tail_lines is not None:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-tail_lines:]) if tail_lines else b""
    if limit_bytes is not None:
        data = data[:limit_bytes]
    return data
