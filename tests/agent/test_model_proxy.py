"""The worker's model proxy: the agent gets a per-run lease, the provider gets the real key."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from urllib.parse import urlsplit

import httpx
import pytest

from devenv.temporal_server import free_port
from executors.model_proxy import LeaseBudget, ModelProxy, allowed
from standins.model_server import ModelServer, Reply, ScriptedBrain

REAL_KEY = "sk-real-provider-key"
BODY = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def provider():
    with ModelServer(
        brain=ScriptedBrain().when(Reply.text("hello from the model")), api_key=REAL_KEY
    ) as server:
        yield server


async def test_lease_is_swapped_for_the_real_key_and_the_stream_passes_through(provider):
    proxy = ModelProxy(provider.base_url, REAL_KEY)
    async with proxy.lease() as lease, httpx.AsyncClient(base_url=proxy.base_url) as http:
        response = await http.post(
            "/chat/completions", json=BODY, headers={"Authorization": f"Bearer {lease.token}"}
        )
        forged = await http.post(
            "/chat/completions", json=BODY, headers={"Authorization": f"Bearer {REAL_KEY}"}
        )
        missing = await http.post("/chat/completions", json=BODY)
        base_url = proxy.base_url
    assert response.status_code == 200
    assert "hello from the model" in response.text and "data: [DONE]" in response.text
    assert REAL_KEY not in response.text
    assert forged.status_code == missing.status_code == 401
    assert len(provider.requests) == 1  # nothing unauthorised was forwarded
    # With no lease left the proxy stops listening: an old token has nothing to talk to.
    async with httpx.AsyncClient(base_url=base_url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(
                "/chat/completions", json=BODY, headers={"Authorization": f"Bearer {lease.token}"}
            )


async def test_provider_down_is_a_502_with_a_reason():
    proxy = ModelProxy(f"http://127.0.0.1:{free_port()}/v1", REAL_KEY)
    async with proxy.lease() as lease, httpx.AsyncClient(base_url=proxy.base_url) as http:
        response = await http.post("/chat/completions", json=BODY, headers={"api-key": lease.token})
    assert response.status_code == 502 and "unreachable" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("provider_type", "method", "tail", "expected"),
    [
        ("openai", "POST", "chat/completions", True),
        ("openai", "POST", "responses", True),
        ("openai", "GET", "models", True),
        ("openai", "GET", "models/gpt-4.1", True),
        ("", "POST", "chat/completions", True),
        ("openai", "GET", "chat/completions", False),
        ("openai", "GET", "files", False),
        ("openai", "DELETE", "files/file-abc", False),
        ("openai", "POST", "fine_tuning/jobs", False),
        ("openai", "GET", "organization/admin_api_keys", False),
        ("openai", "POST", "batches", False),
        ("openai", "POST", "../chat/completions", False),
        ("openai", "POST", "x/../chat/completions", False),
        ("azure", "POST", "openai/deployments/gpt4/chat/completions", True),
        ("azure", "GET", "openai/deployments", False),
        ("anthropic", "POST", "messages", True),
        ("anthropic", "POST", "chat/completions", False),
    ],
)
def test_only_the_operations_the_cli_needs_are_allowed(provider_type, method, tail, expected):
    assert allowed(provider_type, method, tail) is expected


async def test_refused_paths_are_403_and_never_forwarded(provider):
    proxy = ModelProxy(provider.base_url, REAL_KEY)
    async with proxy.lease() as lease, httpx.AsyncClient(base_url=proxy.base_url) as http:
        auth = {"Authorization": f"Bearer {lease.token}"}
        files = await http.get("/files", headers=auth)
        tuning = await http.post("/fine_tuning/jobs", json={}, headers=auth)
        admin = await http.get("/organization/admin_api_keys", headers=auth)
    assert files.status_code == tuning.status_code == admin.status_code == 403
    assert "not allowed through the model proxy" in files.json()["error"]["message"]
    assert provider.requests == []


async def test_token_and_byte_budgets_end_a_lease_with_a_clear_error(provider):
    proxy = ModelProxy(provider.base_url, REAL_KEY, budget=LeaseBudget(tokens=5))
    async with proxy.lease() as lease, httpx.AsyncClient(base_url=proxy.base_url) as http:
        auth = {"Authorization": f"Bearer {lease.token}"}
        first = await http.post("/chat/completions", json=BODY, headers=auth)
        second = await http.post("/chat/completions", json=BODY, headers=auth)
    assert first.status_code == 200 and lease.spent.tokens > 5  # the usage chunk was counted
    assert second.status_code == 403
    assert second.json()["error"]["message"].startswith("lease budget exceeded:")
    assert "MODEL_PROXY_MAX_TOKENS=5" in second.json()["error"]["message"]
    assert len(provider.requests) == 1

    proxy = ModelProxy(provider.base_url, REAL_KEY, budget=LeaseBudget(bytes=100))
    async with proxy.lease() as lease, httpx.AsyncClient(base_url=proxy.base_url) as http:
        auth = {"Authorization": f"Bearer {lease.token}"}
        await http.post("/chat/completions", json=BODY, headers=auth)
        over = await http.post("/chat/completions", json=BODY, headers=auth)
    assert over.status_code == 403 and "MODEL_PROXY_MAX_BYTES=100" in over.json()["error"]["message"]


async def test_a_silent_provider_is_a_504_naming_the_idle_timeout(provider):
    provider.stall_next(1, 5)
    proxy = ModelProxy(provider.base_url, REAL_KEY, idle_timeout=0.5)
    async with proxy.lease() as lease, httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as http:
        response = await http.post(
            "/chat/completions", json=BODY, headers={"Authorization": f"Bearer {lease.token}"}
        )
    assert response.status_code == 504
    assert "MODEL_PROXY_IDLE_TIMEOUT" in response.json()["error"]["message"]


async def test_a_caller_that_hangs_up_drops_its_provider_request(provider):
    """A run killed mid-answer (cancelled, its sandbox or Job gone) closes its connection; the proxy
    drops the provider's request with it instead of waiting out an answer nobody reads."""
    provider.stall_next(1, 30)
    proxy = ModelProxy(provider.base_url, REAL_KEY)
    async with proxy.lease() as lease, httpx.AsyncClient(base_url=proxy.base_url, timeout=60) as http:
        call = asyncio.ensure_future(
            http.post("/chat/completions", json=BODY, headers={"Authorization": f"Bearer {lease.token}"})
        )
        for _ in range(200):
            if provider.stalls_begun:
                break
            await asyncio.sleep(0.02)
        assert provider.stalls_begun == 1
        call.cancel()  # the caller goes away, as a killed CLI does
        with contextlib.suppress(asyncio.CancelledError):
            await call
        for _ in range(150):
            if provider.stalls_dropped:
                break
            await asyncio.sleep(0.02)
    assert provider.stalls_dropped == 1, "the provider's request outlived its caller"
    assert provider.requests == []  # it never got as far as an answer


async def test_a_lease_socket_exists_only_while_the_lease_does(provider):
    proxy = ModelProxy(provider.base_url, REAL_KEY)
    async with proxy.lease(unix_socket=True) as lease:
        assert lease.socket is not None and lease.socket.is_socket()
        transport = httpx.AsyncHTTPTransport(uds=str(lease.socket))
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy/p") as http:
            response = await http.post(
                "/chat/completions", json=BODY, headers={"Authorization": f"Bearer {lease.token}"}
            )
        assert response.status_code == 200
        socket_path = lease.socket
    assert not socket_path.exists()


async def _lingering_provider() -> tuple[object, str]:
    """A provider that sends `data: [DONE]` and then takes a moment to end its stream, as real
    ones do (usage chunks, keep-alive): the CLI has closed its side by then."""
    from aiohttp import web

    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\ndata: [DONE]\n\n')
        await asyncio.sleep(0.3)
        # The proxy drops this request once the CLI has hung up (handler cancellation): a remote
        # provider does not log into ours, so this one keeps quiet about it too.
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"


async def test_a_client_closing_a_finished_stream_is_not_an_error(caplog):
    """The CLI closes its connection once it has read `data: [DONE]`, often before the proxy has
    written the stream's end: the forward ends quietly (no ERROR, no traceback in the log)."""
    caplog.set_level(logging.INFO)
    runner, upstream = await _lingering_provider()
    proxy = ModelProxy(upstream, REAL_KEY)
    try:
        async with proxy.lease() as lease:
            url = urlsplit(proxy.base_url)
            body = json.dumps(BODY).encode()
            request = (
                f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: proxy\r\n"
                f"Content-Type: application/json\r\nAuthorization: Bearer {lease.token}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            for attempt in range(4):
                reader, writer = await asyncio.open_connection(url.hostname, url.port)
                writer.write(request)
                await writer.drain()
                seen = b""
                while b"[DONE]" not in seen and (chunk := await reader.read(65536)):
                    seen += chunk
                assert b"[DONE]" in seen
                if attempt % 2:
                    writer.transport.abort()  # a reset
                else:
                    writer.close()  # a FIN
            await asyncio.sleep(0.6)  # the proxy writes the stream's end into closed connections
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
