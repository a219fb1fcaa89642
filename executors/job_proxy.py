"""The worker's listener for its agent Jobs (TASK_EXECUTOR=kubernetes), so no Job holds a credential.

Two routes on K8S_PROXY_LISTEN (the chart exposes it as a Service that only agent-job pods may reach):

* `/p/...`: the model proxy (executors.model_proxy) accepting a Job's `model` lease, and swapping in
  the provider key the worker holds;
* `/git/<project path>.git/...`: git's smart-HTTP fetch (`info/refs?service=git-upload-pack` and
  `git-upload-pack`) of the one repository the Job's `git` lease names, forwarded to GitLab with the
  worker's token. Nothing else: no push (`git-receive-pack`), no other project, no API.

Leases are stateless (executors.job_keys): a replica verifies what another issued, and a restarted
worker keeps serving the Jobs it re-attaches to. A request without a valid lease gets 401 and
nothing is forwarded.
"""

from __future__ import annotations

import base64
import binascii
import logging
import ssl
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from contracts.settings import Settings
from executors.job_keys import JobKeys
from executors.model_proxy import HOP_BY_HOP, LeaseBudget, ModelProxy

log = logging.getLogger(__name__)
GIT_HEADERS = ("content-type", "content-encoding", "accept", "accept-encoding", "git-protocol", "user-agent")


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"K8S_PROXY_LISTEN must be host:port, not {value!r}")
    return host.strip("[]"), int(port)


def _basic_password(header: str) -> str:
    if not header.lower().startswith("basic "):
        return ""
    try:
        return base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")[2]
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _refuse(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")


class JobProxy:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = JobKeys.from_settings(settings)
        self.host, self.port = parse_listen(settings.k8s_proxy_listen)
        self._model: ModelProxy | None = None
        if settings.copilot_provider_base_url:
            key = settings.copilot_provider_api_key
            self._model = ModelProxy(
                settings.copilot_provider_base_url,
                key.get_secret_value() if key else None,
                authorize=lambda token: self.keys.verify(token, "model") is not None,
                # the same least privilege as the local executor's leases (executors/model_proxy.py)
                provider_type=settings.copilot_provider_type,
                budget=LeaseBudget.from_settings(settings),
                connect_timeout=settings.model_proxy_connect_timeout,
                idle_timeout=settings.model_proxy_idle_timeout,
            )
        self._runner: web.AppRunner | None = None
        self._git: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> JobProxy:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        if self._model is not None:
            await self._model.attach(app)
        app.router.add_route("*", "/git/{path:.*}", self._forward_git)
        # A Job deleted mid-request (a cancelled run) closes its connections: their forwards are
        # cancelled with them (executors/model_proxy.py), so no model answer streams on to nobody.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        tls: ssl.SSLContext | bool = True if self.settings.gitlab_ssl_verify else False
        self._git = aiohttp.ClientSession(
            auto_decompress=False,  # git's bodies pass through as GitLab encoded them
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300),
            connector=aiohttp.TCPConnector(ssl=tls),
        )
        self._runner = runner
        log.info("Job proxy listening on %s:%s", self.host, self.port)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._git is not None:
            await self._git.close()
        if self._model is not None:
            await self._model.stop()
        self._runner = self._git = None

    async def _forward_git(self, request: web.Request) -> web.StreamResponse:
        lease = self.keys.verify(_basic_password(request.headers.get("Authorization", "")), "git")
        if lease is None:
            return _refuse(401, "unknown or expired lease")
        project = urlsplit(lease.repo).path.lstrip("/")
        path = request.match_info["path"]
        fetch_refs = (
            request.method == "GET"
            and path == f"{project}/info/refs"
            and request.query.get("service") == "git-upload-pack"
        )
        fetch_pack = request.method == "POST" and path == f"{project}/git-upload-pack"
        if not (fetch_refs or fetch_pack):
            return _refuse(403, f"this lease fetches {project} and nothing else")
        url = lease.repo.rstrip("/") + path[len(project) :]
        if request.query_string:
            url += f"?{request.query_string}"
        headers = {k: v for k, v in request.headers.items() if k.lower() in GIT_HEADERS}
        token = self.settings.gitlab_token_of(
            lease.credential
        )  # the project's credential, signed in the lease
        if token is not None:
            basic = base64.b64encode(f"oauth2:{token.get_secret_value()}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        assert self._git is not None
        try:
            upstream = await self._git.request(
                request.method, url, headers=headers, data=request.content if fetch_pack else None
            )
        except aiohttp.ClientError as exc:
            return _refuse(502, f"GitLab unreachable: {type(exc).__name__}")
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP | {"www-authenticate", "set-cookie"}:
                    response.headers[name] = value
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
