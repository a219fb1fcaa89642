"""The scripted model server over real HTTP: streaming, scripting, faults and malformed requests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from standins.model_server import ChatRequest, ModelServer, Reply, ScriptedBrain, ToolCall

TOOLS = [{"type": "function", "function": {"name": n, "parameters": {}}} for n in ("view", "reviewer-x")]


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(models=["m1"], api_key="key", max_body_bytes=64 * 1024) as running:
        yield running


def post(server: ModelServer, body: Any, *, key: str = "key", raw: bytes | None = None) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/chat/completions",
        content=raw if raw is not None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=10,
    )


def chat(messages: list[dict[str, Any]], stream: bool = True, model: str = "m1") -> dict[str, Any]:
    return {"model": model, "messages": messages, "tools": TOOLS, "stream": stream}


def sse_events(response: httpx.Response) -> list[Any]:
    assert response.headers["content-type"] == "text/event-stream"
    data = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def test_streamed_tool_calls_reassemble_and_the_request_is_recorded(server: ModelServer) -> None:
    long_args = {"path": "a.py", "text": "y" * 300}
    server.brain = ScriptedBrain().when(
        Reply.calls(("view", long_args), ToolCall("reviewer-x", {"n": 1})), prompt_contains="go"
    )
    events = sse_events(
        post(server, chat([{"role": "system", "content": "sys"}, {"role": "user", "content": "go"}]))
    )

    calls: dict[int, dict[str, str]] = {}
    for event in events:
        for choice in event["choices"]:
            for delta in choice["delta"].get("tool_calls", []):
                call = calls.setdefault(delta["index"], {"name": "", "arguments": ""})
                call["name"] += delta.get("function", {}).get("name", "")
                call["arguments"] += delta.get("function", {}).get("arguments", "")
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("view", long_args),
        ("reviewer-x", {"n": 1}),
    ]
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["prompt_tokens"] == 1  # "sysgo" = 5 chars
    (recorded,) = server.completions()
    assert recorded.tools == ["view", "reviewer-x"] and recorded.prompt_chars == 5 and recorded.stream


def test_turns_follow_the_conversation_and_fall_back_to_the_default(server: ModelServer) -> None:
    def answer(request: ChatRequest) -> Reply:
        (result,) = request.tool_results
        return Reply.text(f"{result.name}:{result.arguments['path']}:{result.content}")

    server.brain = ScriptedBrain(default="bye").when(
        Reply.call("view", path="a.py"), answer, prompt_contains="go"
    )
    user = {"role": "user", "content": [{"type": "text", "text": "please go"}]}
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "view", "arguments": '{"path": "a.py"}'}}
        ],
    }
    tool = {"role": "tool", "tool_call_id": "c1", "content": "print(1)"}
    second = post(server, chat([user, assistant, tool], stream=False)).json()
    assert second["choices"][0]["message"]["content"] == "view:a.py:print(1)"
    assert second["choices"][0]["finish_reason"] == "stop"
    third = post(server, chat([user, assistant, tool, {"role": "assistant", "content": "x"}], stream=False))
    assert third.json()["choices"][0]["message"]["content"] == "bye"
    other = post(server, chat([{"role": "user", "content": "unrelated"}], stream=False))
    assert other.json()["choices"][0]["message"]["content"] == "bye"


def test_injected_failures_and_stalls(server: ModelServer) -> None:
    body = chat([{"role": "user", "content": "hi"}], stream=False)
    server.fail_next(1, status=429, retry_after=2)
    limited = post(server, body)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json()["error"]["message"] == "Injected failure."
    server.stall_next(1, 0.5)
    started = time.monotonic()
    assert post(server, body).status_code == 200
    assert time.monotonic() - started >= 0.5
    assert server.failures_served == 1 and len(server.completions()) == 1


@pytest.mark.parametrize(
    ("raw", "key", "status", "fragment"),
    [
        (b"{not json", "key", 400, "not valid JSON"),
        (b"[]", "key", 400, "JSON object"),
        (json.dumps({"model": "m1"}).encode(), "key", 400, "'messages'"),
        (json.dumps({"model": "m1", "messages": ["x"]}).encode(), "key", 400, "'messages'"),
        (json.dumps({"messages": [{"role": "user"}]}).encode(), "key", 400, "'model'"),
        (json.dumps(chat([{"role": "user", "content": "x"}], model="gpt-9")).encode(), "key", 404, "gpt-9"),
        (json.dumps(chat([{"role": "user", "content": "x"}])).encode(), "wrong", 401, "API key"),
        (b"x" * (64 * 1024 + 1), "key", 413, "Body over"),
    ],
)
def test_malformed_requests_get_openai_style_errors(
    server: ModelServer, raw: bytes, key: str, status: int, fragment: str
) -> None:
    response = post(server, None, raw=raw, key=key)
    assert response.status_code == status
    assert fragment in response.json()["error"]["message"]
    assert server.completions() == []


def test_brain_errors_surface_as_500(server: ModelServer) -> None:
    def broken(request: ChatRequest) -> Reply:
        raise RuntimeError("oops")

    server.brain = broken
    response = post(server, chat([{"role": "user", "content": "x"}]))
    assert response.status_code == 500 and "RuntimeError: oops" in response.json()["error"]["message"]
    assert server.errors == ["brain failed: RuntimeError: oops"]


def test_models_endpoint(server: ModelServer) -> None:
    response = httpx.get(f"{server.base_url}/models", headers={"Authorization": "Bearer key"})
    assert [m["id"] for m in response.json()["data"]] == ["m1"]
    assert httpx.get(f"{server.base_url}/models").status_code == 401
    assert httpx.get(f"{server.base_url}/other", headers={"Authorization": "Bearer key"}).status_code == 404


def test_command_line_entry_point_serves_the_demo_brain() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.model_server", "--port", "0", "--brain", "demo"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        base_url = banner.split()[4]
        assert banner.startswith("model server listening on http://127.0.0.1:") and "(brain: demo)" in banner
        body = {"model": "any", "messages": [{"role": "user", "content": "hello"}]}
        reply = httpx.post(f"{base_url}/chat/completions", json=body, timeout=10).json()
        assert reply["choices"][0]["message"]["content"].startswith("I am the demo model")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
