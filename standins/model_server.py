"""A scripted OpenAI-compatible model server for the real Copilot CLI in BYOK mode.

The CLI (`COPILOT_PROVIDER_BASE_URL=<server.base_url>`, `COPILOT_OFFLINE=true`) sends its chat
completions here; a *brain* decides every reply, so a test states which tool calls and answers the
"model" gives, and `make demo` runs the deterministic `standins.brains.DemoBrain`. It also answers as
Azure OpenAI's v1 API does (`COPILOT_PROVIDER_TYPE=azure`, base URL `root_url`: the CLI calls
`/openai/v1/chat/completions` with the key in an `api-key` header).

Hostile or broken input never crashes the server: bad JSON, a missing `messages` list or an oversized
body is a 400/413 with an OpenAI-style error body; an exception in a brain is a 500 naming it (and is
kept in `server.errors`) so a test sees its own bug instead of a hang.
"""

from __future__ import annotations

import argparse
import itertools
import json
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 16 * 1024 * 1024
CHARS_PER_TOKEN = 4


# --- what a brain sees and returns ---------------------------------------------------------------
@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Reply:
    """One assistant turn: text, tool calls (run by the CLI, which then asks again), or both."""

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None  # None: estimated from the sizes (chars / 4)

    @classmethod
    def text(cls, content: str) -> Reply:
        return cls(content=content)

    @classmethod
    def call(cls, name: str, arguments: dict[str, Any] | None = None, /, **kwargs: Any) -> Reply:
        """A single tool call; `Reply.call("view", path="a.py")` or `Reply.call("x", {...})`."""
        return cls(tool_calls=(ToolCall(name, {**(arguments or {}), **kwargs}),))

    @classmethod
    def calls(cls, *calls: ToolCall | tuple[str, dict[str, Any]]) -> Reply:
        return cls(tool_calls=tuple(c if isinstance(c, ToolCall) else ToolCall(*c) for c in calls))


@dataclass(frozen=True)
class ToolResult:
    """What the CLI reported back for one earlier tool call."""

    name: str
    arguments: dict[str, Any]
    content: str


def message_text(message: dict[str, Any]) -> str:
    """The text of a message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    tools: list[str]  # names of the tools offered, e.g. "view", "reviewer-report_finding"
    stream: bool

    @property
    def prompt(self) -> str:
        """The first user message: the task prompt the CLI was started with."""
        return next((message_text(m) for m in self.messages if m.get("role") == "user"), "")

    @property
    def last_user_text(self) -> str:
        return next((message_text(m) for m in reversed(self.messages) if m.get("role") == "user"), "")

    @property
    def system_text(self) -> str:
        return "\n".join(message_text(m) for m in self.messages if m.get("role") == "system")

    @property
    def turn(self) -> int:
        """Assistant turns so far in this conversation (0 for the first reply)."""
        return sum(1 for m in self.messages if m.get("role") == "assistant")

    @property
    def tool_results(self) -> list[ToolResult]:
        calls: dict[str, tuple[str, dict[str, Any]]] = {}
        results = []
        for message in self.messages:
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except json.JSONDecodeError:
                    arguments = {}
                calls[call.get("id", "")] = (function.get("name", ""), arguments)
            if message.get("role") == "tool":
                name, arguments = calls.get(message.get("tool_call_id", ""), ("", {}))
                results.append(ToolResult(name, arguments, message_text(message)))
        return results

    def offers(self, tool: str) -> bool:
        return tool in self.tools

    @property
    def prompt_chars(self) -> int:
        return sum(len(message_text(m)) for m in self.messages) + sum(
            len(json.dumps(m.get("tool_calls"))) for m in self.messages if m.get("tool_calls")
        )


Brain = Callable[[ChatRequest], Reply]
Turn = Reply | Callable[[ChatRequest], Reply]


# --- scripted brain -----------------------------------------------------------------------------
@dataclass
class _Rule:
    prompt_contains: str | None
    tool_offered: str | None
    turns: list[Turn]

    def matches(self, request: ChatRequest) -> bool:
        if self.prompt_contains is not None and self.prompt_contains not in request.prompt:
            return False
        return self.tool_offered is None or request.offers(self.tool_offered)


class ScriptedBrain:
    """Replies from rules; the first rule whose condition holds gives turn N of its list.

    ``ScriptedBrain().when(Reply.call("view", path="a.py"), Reply.text("done"), prompt_contains="a.py")``
    A turn may be a callable taking the `ChatRequest` (to answer from tool results). Past the end of
    the list, or when no rule matches, the brain answers `default` so every run terminates.
    """

    def __init__(self, default: str = "Done.") -> None:
        self._rules: list[_Rule] = []
        self._default = default

    def when(
        self, *turns: Turn, prompt_contains: str | None = None, tool_offered: str | None = None
    ) -> ScriptedBrain:
        self._rules.append(_Rule(prompt_contains, tool_offered, list(turns)))
        return self

    def __call__(self, request: ChatRequest) -> Reply:
        for rule in self._rules:
            if rule.matches(request):
                if request.turn >= len(rule.turns):
                    break
                turn = rule.turns[request.turn]
                return turn(request) if callable(turn) else turn
        return Reply.text(self._default)


# --- the server -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedRequest:
    model: str
    messages: list[dict[str, Any]]
    tools: list[str]
    stream: bool
    prompt_chars: int
    path: str = "/v1/chat/completions"  # "/openai/v1/chat/completions": Azure OpenAI's v1 API


@dataclass
class _Fault:
    status: int = 0
    retry_after: float | None = None
    stall_s: float = 0.0


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.headers = headers or {}


class ModelServer:
    """``with ModelServer(brain=...) as server: env COPILOT_PROVIDER_BASE_URL=server.base_url``."""

    def __init__(
        self,
        brain: Brain | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        models: Iterable[str] | None = None,
        api_key: str | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.brain: Brain = brain or ScriptedBrain()
        self.models = set(models) if models is not None else None  # None: any model name is served
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.failures_served = 0  # injected error answers so far
        self.stalls_begun = 0  # stalled requests that have arrived (a test may act while they hang)
        self.stalls_dropped = 0  # stalled requests whose caller hung up before the stall ended
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._httpd.server_address[0]}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """The base URL as an Azure OpenAI resource's endpoint (the CLI adds `/openai/v1`)."""
        return f"http://{self._httpd.server_address[0]}:{self.port}"

    def start(self) -> ModelServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="model-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled replies
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- fault injection ---
    def fail_next(self, n: int, status: int = 500, retry_after: float | None = None) -> None:
        with self._lock:
            self._faults.extend(_Fault(status=status, retry_after=retry_after) for _ in range(n))

    def stall_next(self, n: int, seconds: float) -> None:
        with self._lock:
            self._faults.extend(_Fault(stall_s=seconds) for _ in range(n))

    def completions(self) -> list[RecordedRequest]:
        """Recorded requests, snapshot-safe while the server runs."""
        with self._lock:
            return list(self.requests)

    # --- request handling ---
    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _check_auth_and_model(self, headers: Any, model: str | None) -> None:
        # OpenAI sends the key as a bearer token, Azure OpenAI in an `api-key` header.
        presented = headers.get("api-key") or headers.get("Authorization", "").removeprefix("Bearer ")
        if self.api_key is not None and presented != self.api_key:
            raise _ApiError(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if model is not None and self.models is not None and model not in self.models:
            raise _ApiError(
                404, f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found"
            )

    def _parse(self, body: bytes) -> ChatRequest:
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _ApiError(400, f"Request body is not valid JSON: {exc}", "invalid_request_error") from None
        if not isinstance(payload, dict):
            raise _ApiError(400, "Request body must be a JSON object.", "invalid_request_error")
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise _ApiError(400, "'messages' must be a non-empty list of objects.", "invalid_request_error")
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise _ApiError(400, "'model' must be a non-empty string.", "invalid_request_error")
        tools = [
            (t.get("function") or {}).get("name", "")
            for t in payload.get("tools") or []
            if isinstance(t, dict)
        ]
        return ChatRequest(model=model, messages=messages, tools=tools, stream=bool(payload.get("stream")))

    def _reply(self, request: ChatRequest) -> Reply:
        try:
            return self.brain(request)
        except Exception as exc:  # a brain bug must surface as a clear error, not a hung CLI
            message = f"brain failed: {type(exc).__name__}: {exc}"
            with self._lock:
                self.errors.append(message)
            raise _ApiError(500, message, "server_error") from exc

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers, then the body or SSE chunks, are separate writes: without TCP_NODELAY each
            # answer on a kept-alive connection waits ~40 ms for the client's delayed ACK
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # tests read `server.requests`; access logs would only be noise

            def do_GET(self) -> None:
                try:
                    if self.path.rstrip("/") not in ("/v1/models", "/openai/v1/models"):
                        raise _ApiError(404, f"Unknown path {self.path}", "invalid_request_error")
                    server._check_auth_and_model(self.headers, None)
                    names = sorted(server.models) if server.models is not None else ["scripted"]
                    data = [{"id": n, "object": "model", "created": 0, "owned_by": "standin"} for n in names]
                    self._json(200, {"object": "list", "data": data})
                except _ApiError as exc:
                    self._error(exc)

            def _stall(self, seconds: float) -> bool:
                """Hang for `seconds`; True when the stall ended early (the server stops, or the
                caller hung up: counted in `stalls_dropped`, what a provider sees of a dropped request)."""
                deadline = time.monotonic() + seconds
                while (left := deadline - time.monotonic()) > 0:
                    if server._stopping.wait(min(left, 0.05)):
                        return True
                    readable, _, _ = select.select([self.connection], [], [], 0)
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        with server._lock:
                            server.stalls_dropped += 1
                        return True
                return False

            def do_POST(self) -> None:
                try:
                    path = self.path.split("?", 1)[0].rstrip("/")
                    if path not in ("/v1/chat/completions", "/openai/v1/chat/completions"):
                        raise _ApiError(404, f"Unknown path {self.path}", "invalid_request_error")
                    request = server._parse(self._body())
                    server._check_auth_and_model(self.headers, request.model)
                    fault = server._take_fault()
                    if fault and fault.stall_s:
                        with server._lock:
                            server.stalls_begun += 1
                        if self._stall(fault.stall_s):
                            return
                    if fault and fault.status:
                        with server._lock:
                            server.failures_served += 1
                        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
                        raise _ApiError(fault.status, "Injected failure.", "server_error", headers=headers)
                    with server._lock:
                        server.requests.append(
                            RecordedRequest(
                                request.model,
                                request.messages,
                                request.tools,
                                request.stream,
                                request.prompt_chars,
                                path,
                            )
                        )
                    reply = server._reply(request)
                    self._answer(request, reply)
                except _ApiError as exc:
                    self._error(exc)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. its timeout); nothing left to tell it

            def _body(self) -> bytes:
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                except ValueError:
                    raise _ApiError(400, "Bad Content-Length.", "invalid_request_error") from None
                if length > server.max_body_bytes:
                    self.close_connection = True  # the unread body must not be parsed as a request
                    raise _ApiError(413, f"Body over {server.max_body_bytes} bytes.", "invalid_request_error")
                return self.rfile.read(length)

            def _answer(self, request: ChatRequest, reply: Reply) -> None:
                completion_id = f"chatcmpl-{next(server._ids)}"
                calls = [
                    {
                        "id": f"call_{completion_id[9:]}_{i}",
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                    }
                    for i, c in enumerate(reply.tool_calls)
                ]
                usage = reply.usage or Usage(
                    prompt_tokens=max(1, request.prompt_chars // CHARS_PER_TOKEN),
                    completion_tokens=max(
                        1, (len(reply.content) + len(json.dumps(calls))) // CHARS_PER_TOKEN
                    ),
                )
                usage_json = {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                }
                finish = "tool_calls" if calls else "stop"
                base = {"id": completion_id, "created": int(time.time()), "model": request.model}
                if not request.stream:
                    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
                    if calls:
                        message["tool_calls"] = calls
                    choice = {"index": 0, "message": message, "finish_reason": finish}
                    self._json(
                        200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage_json}
                    )
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

                def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
                    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
                    return {**base, "object": "chat.completion.chunk", "choices": [choice]}

                events = [chunk({"role": "assistant", "content": ""})]
                events += [chunk({"content": piece}) for piece in _pieces(reply.content)]
                for i, call in enumerate(calls):
                    head = {"index": i, "id": call["id"], "type": "function"}
                    head["function"] = {"name": call["function"]["name"], "arguments": ""}
                    events.append(chunk({"tool_calls": [head]}))
                    events += [
                        chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
                        for piece in _pieces(call["function"]["arguments"])
                    ]
                events.append(chunk({}, finish))
                events.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage_json})
                for event in events:
                    self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _json(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _error(self, exc: _ApiError) -> None:
                error = {"message": exc.message, "type": exc.kind, "param": None, "code": exc.code}
                self._json(exc.status, {"error": error}, exc.headers)

        return Handler


def _pieces(text: str, size: int = 64) -> list[str]:
    """Split into chunks like a real stream, so the client's delta assembly is exercised."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible model server (foreground).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--brain", choices=["demo", "echo"], default="demo")
    args = parser.parse_args(argv)
    if args.brain == "demo":
        from standins.brains import DemoBrain  # imported late: brains builds on the types above

        brain: Brain = DemoBrain()
    else:
        brain = ScriptedBrain(default="OK")
    server = ModelServer(brain, host=args.host, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.stop).start())
    print(f"model server listening on {server.base_url} (brain: {args.brain})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
