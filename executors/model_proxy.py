"""The worker's proxy to the BYOK model provider: the agent never holds the key, and a lease can do
only what the Copilot CLI needs, within a budget.

The CLI is given a per-run lease token as its "API key" and the proxy's address. With the local
executor that address is a unix socket of its own per lease, bound into the run's sandbox (which has
no other network; executors/process_sandbox.py): the proxy checks the token, swaps in the real key
(in whichever header the provider type uses: `Authorization: Bearer`, `api-key`, `x-api-key`) and
streams the answer back. The lease ends when the CLI exits, before patch collection and tests.

Least privilege (security review finding 10):
- only the methods and paths the CLI uses, per provider type (`ALLOWED`): chat completions and
  responses (POST), messages for anthropic (POST), the model list (GET); everything else is 403 and
  never forwarded (files, batches, fine-tuning, organisation/admin endpoints, deployment APIs);
- per-lease budgets (`LeaseBudget`: requests, tokens as the provider reports them, bytes both ways):
  once spent, 403 with the budget named (not 429: a spent lease stays spent, and the CLI retries a
  429 with backoff for about a minute before it gives up);
- every upstream request has a connect and an idle (between two reads) timeout: 504 naming it.

Answers: unknown or missing lease 401 (nothing forwarded); provider unreachable 502; any provider
answer (including its errors) passed through unchanged. aiohttp: the worker's loop is asyncio and
the answer is streamed (SSE) chunk by chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from contracts.settings import Settings

log = logging.getLogger(__name__)

AUTH_HEADERS = ("authorization", "api-key", "x-api-key")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
    "proxy-authorization",
    "proxy-authenticate",
}
PREFIX = "/p"
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]*$")
_MODEL_ID = r"[A-Za-z0-9][A-Za-z0-9._:@/-]*"
# Per provider type: (method, path pattern relative to the provider base URL). Azure keeps its
# deployment prefix (openai/deployments/<name>/...) in front of the same operations.
_OPENAI = [
    ("POST", r"(v1/)?chat/completions"),
    ("POST", r"(v1/)?responses"),
    ("GET", r"(v1/)?models"),
    ("GET", rf"(v1/)?models/{_MODEL_ID}"),
]
ALLOWED: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    kind: [(method, re.compile(rf"^{prefix}{path}$")) for method, path in rules]
    for kind, prefix, rules in (
        ("openai", "", _OPENAI),
        ("azure", r"(openai/(deployments/[A-Za-z0-9._-]+/)?)?", _OPENAI),
        (
            "anthropic",
            "",
            [
                ("POST", r"(v1/)?messages"),
                ("GET", r"(v1/)?models"),
                ("GET", rf"(v1/)?models/{_MODEL_ID}"),
            ],
        ),
    )
}
_USAGE_TOTAL = re.compile(rb'"total_tokens"\s*:\s*(\d+)')
_USAGE_PARTS = re.compile(rb'"(?:prompt|completion|input|output)_tokens"\s*:\s*(\d+)')
USAGE_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class LeaseBudget:
    """What one lease (one CLI run) may spend; MODEL_PROXY_MAX_* settings."""

    requests: int = 400
    tokens: int = 4_000_000
    bytes: int = 256 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> LeaseBudget:
        """The budget both proxies (local leases, Job leases) give each lease."""
        return cls(
            requests=settings.model_proxy_max_requests,
            tokens=settings.model_proxy_max_tokens,
            bytes=settings.model_proxy_max_mb * 1024**2,
        )


@dataclass
class _Spent:
    requests: int = 0
    tokens: int = 0
    bytes: int = 0

    def over(self, budget: LeaseBudget) -> str | None:
        for name, setting in (
            ("requests", "MODEL_PROXY_MAX_REQUESTS"),
            ("tokens", "MODEL_PROXY_MAX_TOKENS"),
            ("bytes", "MODEL_PROXY_MAX_BYTES"),
        ):
            if getattr(self, name) >= getattr(budget, name):
                return f"lease budget exceeded: {getattr(self, name)} {name} spent, {setting}={getattr(budget, name)}"
        return None


@dataclass
class Lease:
    """One run's access: the token the CLI presents, and (with `unix_socket=True`) its own socket."""

    token: str
    socket: Path | None = None
    spent: _Spent = field(default_factory=_Spent)


def _token_of(value: str) -> str:
    return value[7:].strip() if value.lower().startswith("bearer ") else value.strip()


def allowed(provider_type: str, method: str, tail: str) -> bool:
    segments = tail.split("/")
    if not all(_SEGMENT.match(s) for s in segments) or any(s in (".", "..") for s in segments):
        return False
    rules = ALLOWED.get(provider_type or "openai", ALLOWED["openai"])
    return any(method == m and pattern.match(tail) for m, pattern in rules)


def _tokens_in(tail: bytes) -> int:
    """Tokens the provider reported in an answer (the last usage object in it), 0 if none."""
    totals = _USAGE_TOTAL.findall(tail)
    if totals:
        return int(totals[-1])
    return sum(int(n) for n in _USAGE_PARTS.findall(tail)[-2:])


class ModelProxy:
    def __init__(
        self,
        upstream: str,
        api_key: str | None,
        *,
        provider_type: str = "",
        budget: LeaseBudget | None = None,
        connect_timeout: float = 10.0,
        idle_timeout: float = 120.0,
        authorize: Callable[[str], bool] | None = None,
    ) -> None:
        """`authorize` accepts tokens besides this proxy's own leases (the Job proxy's Job leases);
        each such token gets a budget of its own, as a lease does."""
        self.upstream = upstream.rstrip("/")
        self._authorize = authorize
        self._external: dict[str, Lease] = {}
        self.provider_type = provider_type
        self.budget = budget or LeaseBudget()
        self.connect_timeout, self.idle_timeout = connect_timeout, idle_timeout
        self._api_key = api_key
        self._leases: dict[str, Lease] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self.port = 0

    @property
    def base_url(self) -> str:
        """The loopback TCP address (for host-side callers; sandboxes reach a lease's unix socket)."""
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    async def _start(self) -> None:  # with self._lock held
        if self._runner is not None:
            return
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", PREFIX + "/{tail:.*}", self._forward)
        # A run killed mid-answer (cancelled, timed out, its sandbox gone) closes its connection: the
        # forward is cancelled with it and the provider's request dropped, not paid for to its end.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = aiohttp.ClientSession(timeout=self._timeout())
        self._runner = runner

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout, sock_read=self.idle_timeout
        )

    async def attach(self, app: web.Application) -> None:
        """Serve the proxy's route on `app`, a listener someone else runs (executors.job_proxy)."""
        app.router.add_route("*", PREFIX + "/{tail:.*}", self._forward)
        async with self._lock:
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=self._timeout())

    def _lease_of(self, token: str) -> Lease | None:
        lease = self._leases.get(token)
        if lease is None and token and self._authorize is not None and self._authorize(token):
            lease = self._external.setdefault(token, Lease(token))
        return lease

    async def stop(self) -> None:
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._session = None

    @contextlib.asynccontextmanager
    async def lease(self, *, unix_socket: bool = False) -> AsyncIterator[Lease]:
        """A token valid until the block ends; with `unix_socket`, also a socket only this lease uses."""
        lease = Lease("lease-" + secrets.token_urlsafe(24))
        socket_dir: Path | None = None
        site: web.UnixSite | None = None
        async with self._lock:
            self._leases[lease.token] = lease
            await self._start()
            if unix_socket:
                assert self._runner is not None
                socket_dir = Path(tempfile.mkdtemp(prefix="model-lease-"))
                lease.socket = socket_dir / "model.sock"
                site = web.UnixSite(self._runner, str(lease.socket))
                await site.start()
                lease.socket.chmod(0o600)  # the sandbox's uid gets it by chown, nobody else
        try:
            yield lease
        finally:
            self._leases.pop(lease.token, None)
            async with self._lock:
                if site is not None:
                    await site.stop()
                if socket_dir is not None:
                    with contextlib.suppress(OSError):
                        lease.socket.unlink()  # type: ignore[union-attr]
                        socket_dir.rmdir()
                # Only listen while some run holds a lease: nothing stays open between runs.
                if not self._leases:
                    await self._close()

    @staticmethod
    def _error(status: int, kind: str, message: str) -> web.Response:
        return web.json_response({"error": {"message": message, "type": kind}}, status=status)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        presented = next((request.headers[h] for h in AUTH_HEADERS if h in request.headers), "")
        lease = self._lease_of(_token_of(presented))
        if lease is None:
            return self._error(401, "auth", "unknown or expired lease")
        tail = request.match_info["tail"]
        if not allowed(self.provider_type, request.method, tail):
            log.warning(
                "model proxy refused %s %s (not an operation the agent needs)", request.method, tail[:200]
            )
            return self._error(
                403, "forbidden", f"{request.method} /{tail[:200]} is not allowed through the model proxy"
            )
        if over := lease.spent.over(self.budget):
            log.warning("model proxy: %s", over)
            return self._error(403, "budget_exceeded", over)
        body = await request.read()
        lease.spent.requests += 1
        lease.spent.bytes += len(body)
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | set(AUTH_HEADERS)
        }
        for name in AUTH_HEADERS:
            if name in request.headers and self._api_key:
                headers[name] = f"Bearer {self._api_key}" if name == "authorization" else self._api_key
        url = f"{self.upstream}/{tail}"
        if request.query_string:
            url += f"?{request.query_string}"
        assert self._session is not None
        try:
            upstream = await self._session.request(request.method, url, headers=headers, data=body)
        except aiohttp.ConnectionTimeoutError:
            return self._error(
                504,
                "proxy",
                f"model provider: no connection within {self.connect_timeout:g} s (MODEL_PROXY_CONNECT_TIMEOUT)",
            )
        except (aiohttp.ServerTimeoutError, TimeoutError):
            return self._error(
                504,
                "proxy",
                f"model provider sent nothing for {self.idle_timeout:g} s (MODEL_PROXY_IDLE_TIMEOUT)",
            )
        except aiohttp.ClientError as exc:
            return self._error(502, "proxy", f"model provider unreachable: {type(exc).__name__}")
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP | {"content-encoding"}:
                    response.headers[name] = value
            await response.prepare(request)
            tail_bytes = b""
            try:
                async for chunk in upstream.content.iter_any():
                    lease.spent.bytes += len(chunk)
                    tail_bytes = (tail_bytes + chunk)[-USAGE_TAIL_BYTES:]
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                return response  # the CLI went away (it exited, or was killed with its sandbox)
            except (aiohttp.ServerTimeoutError, TimeoutError):
                # Headers are out: the CLI sees the stream break, the log says why.
                log.warning(
                    "model provider stalled for %g s mid-answer (MODEL_PROXY_IDLE_TIMEOUT)", self.idle_timeout
                )
                raise
            finally:
                lease.spent.tokens += _tokens_in(tail_bytes)
            return response
