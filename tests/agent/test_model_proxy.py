"""The worker's model proxy: the agent gets a per-run lease, the provider gets the real key."""

from __future__ import annotations

import httpx
import pytest

from devenv.temporal_server import free_port
from executors.model_proxy import ModelProxy
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
