"""The agent's structured answers: a tiny stdio MCP server whose tools append validated JSON lines.

`python -m executors.report_tool --kind review|discussion|implement --out FILE` (or this file run by
path, which is how the Copilot CLI starts it: the module needs nothing but the stdlib and pydantic).
The CLI exposes its tools to the model as `<server>-<tool>` (e.g. `reviewer-report_finding`).

Why not the `mcp` package's MCPServer: importing it alone takes 1.1-1.6 s on the 2-core reference
machine, against about 0.15 s for this module, and every agent run starts one. MCP over stdio is
newline-delimited JSON-RPC 2.0 with four methods we need (initialize, ping, tools/list, tools/call),
so the protocol surface below is small and tested against the real CLI.

Untrusted input (the model's arguments) is validated by pydantic; an invalid call gets an error
result naming each bad field, so the model can correct itself in the same session, and nothing is
written. Output stays bounded: at most MAX_FINDINGS findings and MAX_CALLS recorded calls per run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

if __package__ in (None, ""):  # run by path (how the CLI starts it): make `contracts` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The report models live in contracts/ (the activities read them); re-exported here, their old home.
from contracts.reports import (  # noqa: E402
    MAX_BODY_CHARS,
    MAX_FINDINGS,
    MAX_REPLY_CHARS,
    MAX_SUGGESTION_LINES,
    SERVER_NAMES,
    ChangeReport,
    DiscussionReply,
    Finding,
    FindingAnswer,
    FinishReview,
    Implementation,
    Kind,
    Plan,
    Report,
    Resolution,
)

MAX_CALLS = 200
MAX_LINE_BYTES = 1024 * 1024  # one JSON-RPC message; the CLI sends small ones
PROTOCOL_VERSION = "2025-06-18"

__all__ = [
    "MAX_BODY_CHARS",
    "MAX_FINDINGS",
    "MAX_REPLY_CHARS",
    "MAX_SUGGESTION_LINES",
    "SERVER_NAMES",
    "ChangeReport",
    "DiscussionReply",
    "Finding",
    "FindingAnswer",
    "FinishReview",
    "Implementation",
    "Kind",
    "Plan",
    "Report",
    "Resolution",
    "ReportServer",
    "parse_report",
]

_DESCRIPTIONS = {
    "report_finding": "Report one review finding as an inline comment on the diff. Call once per finding.",
    "report_resolution": "Report whether an earlier discussion thread (by thread_id) has been addressed.",
    "finish_review": "Finish the review with a short overall summary. Call exactly once, last.",
    "reply": "Post your answer to the discussion. Call exactly once.",
    "report_change": "Describe the file changes you made for the discussion (used as the commit message).",
    "report_implementation": "Report the finished implementation. Call exactly once, at the end.",
    "report_plan": "Propose the implementation plan for approval. Call exactly once, at the end.",
    "report_answer": "Answer one review finding (by thread_id): fixed, or dismissed with the reason.",
}
TOOLS: dict[str, dict[str, type[BaseModel]]] = {
    "review": {"report_finding": Finding, "report_resolution": Resolution, "finish_review": FinishReview},
    "discussion": {"reply": DiscussionReply, "report_resolution": Resolution, "report_change": ChangeReport},
    "implement": {"report_implementation": Implementation, "report_answer": FindingAnswer},
    "plan": {"report_plan": Plan},
}
_ONCE = {"finish_review", "reply", "report_change", "report_implementation", "report_plan"}


def parse_report(tool: str, args: Any, kind: str) -> Report:
    """Validate one recorded call; raises ValueError/ValidationError on an unknown tool or bad args."""
    model = TOOLS[kind].get(tool)
    if model is None:
        raise ValueError(f"unknown tool {tool!r} for kind {kind!r}")
    return model.model_validate(args)


def _format_error(tool: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        got = (
            "" if error["type"] == "missing" else f" (got {json.dumps(error.get('input'), default=str)[:80]})"
        )
        problems.append(f"- {where}: {error['msg']}{got}")
    return f"Invalid arguments for {tool}:\n" + "\n".join(problems) + f"\nFix them and call {tool} again."


class ReportServer:
    """The tool logic, independent of the transport so it can be tested directly."""

    def __init__(self, kind: str, out: Path) -> None:
        if kind not in TOOLS:
            raise ValueError(f"kind must be one of {sorted(TOOLS)}")
        self.kind, self.out = kind, out
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.touch()  # an empty file proves the server started even if the model reports nothing
        self._counts: dict[str, int] = {}

    def tool_list(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "description": _DESCRIPTIONS[name], "inputSchema": model.model_json_schema()}
            for name, model in TOOLS[self.kind].items()
        ]

    def call(self, name: str, arguments: Any) -> tuple[bool, str]:
        """(ok, text for the model). Only valid calls within the caps are recorded."""
        model = TOOLS[self.kind].get(name)
        if model is None:
            return False, f"Unknown tool {name!r}; available: {', '.join(TOOLS[self.kind])}."
        try:
            args = model.model_validate(arguments if arguments is not None else {})
        except ValidationError as exc:
            return False, _format_error(name, exc)
        count = self._counts.get(name, 0)
        if name == "report_finding" and count >= MAX_FINDINGS:
            return (
                False,
                f"Refused: at most {MAX_FINDINGS} findings per review; keep the most important ones.",
            )
        if name in _ONCE and count:
            return False, f"Refused: {name} was already called; it may be called only once."
        if sum(self._counts.values()) >= MAX_CALLS:
            return False, f"Refused: at most {MAX_CALLS} reports per run."
        line = json.dumps({"tool": name, "args": args.model_dump(mode="json")}, ensure_ascii=False)
        with self.out.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        self._counts[name] = count + 1
        return True, f"Recorded {name}."

    def handle(self, message: Any) -> dict[str, Any] | None:
        """One JSON-RPC message in, the response out (None for notifications)."""
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _rpc_error(None, -32600, "Invalid Request")
        method, msg_id, params = message.get("method"), message.get("id"), message.get("params") or {}
        if msg_id is None:
            return None  # notifications (initialized, cancelled, ...) need no answer
        if method == "initialize":
            requested = params.get("protocolVersion") if isinstance(params, dict) else None
            return _rpc_result(
                msg_id,
                {
                    "protocolVersion": requested if isinstance(requested, str) else PROTOCOL_VERSION,
                    "capabilities": {"tools": {"listChanged": False}},
                    "serverInfo": {"name": SERVER_NAMES[self.kind], "version": "1"},
                },
            )
        if method == "ping":
            return _rpc_result(msg_id, {})
        if method == "tools/list":
            return _rpc_result(msg_id, {"tools": self.tool_list()})
        if method == "tools/call":
            if not isinstance(params, dict) or not isinstance(params.get("name"), str):
                return _rpc_error(msg_id, -32602, "tools/call needs params.name")
            ok, text = self.call(params["name"], params.get("arguments"))
            return _rpc_result(msg_id, {"content": [{"type": "text", "text": text}], "isError": not ok})
        return _rpc_error(msg_id, -32601, f"Method not found: {method}")

    def serve(self, stdin: Any = None, stdout: Any = None) -> None:
        stdin, stdout = stdin or sys.stdin.buffer, stdout or sys.stdout.buffer
        for raw in iter(lambda: stdin.readline(MAX_LINE_BYTES + 1), b""):
            if not raw.strip():
                continue
            if len(raw) > MAX_LINE_BYTES:
                response: dict[str, Any] | None = _rpc_error(None, -32600, "Message too large")
                # the rest of the oversized line is still buffered: skip it up to its end
                while raw and not raw.endswith(b"\n"):
                    raw = stdin.readline(MAX_LINE_BYTES + 1)
            else:
                try:
                    response = self.handle(json.loads(raw))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    response = _rpc_error(None, -32700, "Parse error")
            if response is not None:
                stdout.write(json.dumps(response).encode() + b"\n")
                stdout.flush()


def _rpc_result(msg_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def _rpc_error(msg_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Stdio MCP server recording the agent's structured reports.")
    parser.add_argument("--kind", required=True, choices=sorted(TOOLS))
    parser.add_argument("--out", required=True, type=Path, help="JSONL file the valid calls are appended to")
    args = parser.parse_args(argv)
    ReportServer(args.kind, args.out).serve()


if __name__ == "__main__":
    main()
