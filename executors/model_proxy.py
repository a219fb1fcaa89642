"""A loopback proxy to the BYOK model provider, so the agent's process tree never holds the real key.

With the local executor the Copilot CLI runs as the worker's user, and a write-mode agent can read
the CLI's `/proc/<pid>/environ`; whatever key the CLI holds can leak. So the CLI is given this
proxy's URL and a per-run lease token as its "API key"; the proxy checks the token, swaps in the real
key (in whichever header the provider type uses: `Authorization: Bearer`, `api-key`, `x-api-key`)
and streams the provider's answer back. A lease ends with its run: a leaked token is worthless after.

Answers: unknown or missing lease token 401 (nothing is forwarded); provider unreachable 502; any
provider answer (including its errors) is passed through unchanged. aiohttp, because the worker's
event loop is asyncio and the response is streamed (SSE) chunk by chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

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


def _token_of(value: str) -> str:
    return value[7:].strip() if value.lower().startswith("bearer ") else value.strip()


class ModelProxy:
    def __init__(
        self, upstream: str, api_key: str | None, *, authorize: Callable[[str], bool] | None = None
    ) -> None:
        """`authorize` accepts tokens besides this proxy's own leases (the Job proxy's Job leases)."""
        self.upstream = upstream.rstrip("/")
        self._api_key = api_key
        self._authorize = authorize
        self._leases: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    async def _start(self) -> None:  # with self._lock held
        if self._runner is not None:
            return
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", PREFIX + "/{tail:.*}", self._forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=30))
        self._runner = runner

    async def attach(self, app: web.Application) -> None:
        """Serve the proxy's route on `app`, a listener someone else runs (executors.job_proxy)."""
        app.router.add_route("*", PREFIX + "/{tail:.*}", self._forward)
        async with self._lock:
            if self._session is None:
                self._session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=30)
                )

    def _authorized(self, token: str) -> bool:
        return token in self._leases or bool(token and self._authorize and self._authorize(token))

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
    async def lease(self) -> AsyncIterator[str]:
        """A token valid until the block ends; the CLI uses it as its provider API key."""
        token = "lease-" + secrets.token_urlsafe(24)
        async with self._lock:
            self._leases.add(token)
            await self._start()
        try:
            yield token
        finally:
            self._leases.discard(token)
            # Only listen while some run holds a lease: nothing stays open between runs.
            async with self._lock:
                if not self._leases:
                    await self._close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        presented = next((request.headers[h] for h in AUTH_HEADERS if h in request.headers), "")
        if not self._authorized(_token_of(presented)):
            return web.json_response(
                {"error": {"message": "unknown or expired lease", "type": "auth"}}, status=401
            )
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | set(AUTH_HEADERS)
        }
        for name in AUTH_HEADERS:
            if name in request.headers and self._api_key:
                headers[name] = f"Bearer {self._api_key}" if name == "authorization" else self._api_key
        url = f"{self.upstream}/{request.match_info['tail']}"
        if request.query_string:
            url += f"?{request.query_string}"
        assert self._session is not None
        try:
            upstream = await self._session.request(
                request.method, url, headers=headers, data=await request.read()
            )
        except aiohttp.ClientError as exc:
            return web.json_response(
                {"error": {"message": f"model provider unreachable: {type(exc).__name__}", "type": "proxy"}},
                status=502,
            )
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP | {"content-encoding"}:
                    response.headers[name] = value
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
