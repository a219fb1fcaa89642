"""The report tool: validation, caps and the JSON-RPC stdio protocol of the real process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from executors import report_tool
from executors.report_tool import MAX_FINDINGS, ReportServer

FINDING = {"file": "src/a.py", "line": 3, "severity": "minor", "title": "t", "body": "b"}


def recorded(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_valid_calls_are_appended_as_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    server = ReportServer("review", out)
    assert out.read_text() == ""  # created at start: proves the server ran
    assert server.call("report_finding", {**FINDING, "end_line": 4, "suggestion": "x = 1\ny = 2"}) == (
        True,
        "Recorded report_finding.",
    )
    assert server.call("report_resolution", {"thread_id": "abc", "status": "partial", "reply": "r"})[0]
    assert server.call("finish_review", {"summary": "s"})[0]
    tools = [entry["tool"] for entry in recorded(out)]
    assert tools == ["report_finding", "report_resolution", "finish_review"]
    assert recorded(out)[0]["args"] == {
        **FINDING,
        "end_line": 4,
        "side": "new",
        "suggestion": "x = 1\ny = 2",
        "category": "other",
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({**FINDING, "severity": "huge"}, "severity: Input should be 'critical', 'major', 'minor' or 'info'"),
        ({**FINDING, "line": 0}, "line: Input should be greater than or equal to 1"),
        ({**FINDING, "end_line": 2}, "end_line must be >= line"),
        ({**FINDING, "file": "/etc/passwd"}, "relative to the repository root"),
        ({**FINDING, "file": "a/../../x"}, "relative to the repository root"),
        ({**FINDING, "body": "x" * 4001}, "body: String should have at most 4000 characters"),
        ({**FINDING, "suggestion": "x\n" * 101}, "at most 100 lines"),
        ({**FINDING, "side": "old", "suggestion": "x"}, "only possible on the new side"),
        ({**FINDING, "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"file": "a.py"}, "severity: Field required"),
        ("not an object", "Input should be a valid dictionary"),
    ],
)
def test_invalid_findings_get_a_clear_error_and_nothing_is_written(
    tmp_path: Path, args: Any, expected: str
) -> None:
    out = tmp_path / "r.jsonl"
    ok, text = ReportServer("review", out).call("report_finding", args)
    assert not ok
    assert expected in text and text.startswith("Invalid arguments for report_finding:")
    assert text.endswith("Fix them and call report_finding again.")
    assert out.read_text() == ""


def test_caps_bound_the_output(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    server = ReportServer("review", out)
    for line in range(1, MAX_FINDINGS + 1):
        assert server.call("report_finding", {**FINDING, "line": line})[0]
    ok, text = server.call("report_finding", FINDING)
    assert not ok and f"at most {MAX_FINDINGS} findings" in text
    assert server.call("finish_review", {"summary": "s"})[0]
    ok, text = server.call("finish_review", {"summary": "again"})
    assert not ok and "only once" in text
    assert len(recorded(out)) == MAX_FINDINGS + 1


def test_tools_depend_on_the_kind(tmp_path: Path) -> None:
    discussion = ReportServer("discussion", tmp_path / "d.jsonl")
    assert [t["name"] for t in discussion.tool_list()] == ["reply", "report_resolution", "report_change"]
    ok, text = discussion.call("report_finding", FINDING)
    assert not ok and "Unknown tool 'report_finding'" in text
    ok, text = discussion.call("report_change", {"summary": "s", "commit_type": "Fix!"})
    assert not ok and "commit_type" in text
    implement = ReportServer("implement", tmp_path / "i.jsonl")
    ok, text = implement.call("report_implementation", {"summary": "s", "commit_summary": "a\nb"})
    assert not ok and "commit_summary" in text
    with pytest.raises(ValueError, match="kind must be one of"):
        ReportServer("merge", tmp_path / "m.jsonl")


def test_stdio_protocol_of_the_real_process(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-03-26"}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "finish_review", "arguments": {}},
        },
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "finish_review", "arguments": {"summary": "ok"}},
        },
        {"jsonrpc": "2.0", "id": 5, "method": "resources/list"},
        {"jsonrpc": "2.0", "id": 6, "method": "ping"},
    ]
    lines = [json.dumps(m) for m in messages]
    lines[5:5] = ["{not json", json.dumps({"id": 9}), "x" * (report_tool.MAX_LINE_BYTES + 10)]
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-I", report_tool.__file__, "--kind", "review", "--out", str(out)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    elapsed = time.monotonic() - started
    responses = [json.loads(line) for line in proc.stdout.splitlines()]
    by_id = {r["id"]: r for r in responses if r["id"] is not None}
    assert by_id[1]["result"]["protocolVersion"] == "2025-03-26"
    assert by_id[1]["result"]["serverInfo"]["name"] == "reviewer"
    schema = {t["name"]: t["inputSchema"] for t in by_id[2]["result"]["tools"]}
    assert schema["report_finding"]["properties"]["severity"]["enum"] == [
        "critical",
        "major",
        "minor",
        "info",
    ]
    assert (
        by_id[3]["result"]["isError"]
        and "summary: Field required" in by_id[3]["result"]["content"][0]["text"]
    )
    assert not by_id[4]["result"]["isError"]
    assert by_id[5]["error"]["code"] == -32601
    assert by_id[6]["result"] == {}
    errors = sorted(r["error"]["code"] for r in responses if r["id"] is None)
    assert errors == [-32700, -32600, -32600]  # bad JSON, not JSON-RPC, oversized line
    assert recorded(out) == [{"tool": "finish_review", "args": {"summary": "ok"}}]
    print(f"report tool: whole session incl. interpreter start {elapsed:.2f} s")
    assert elapsed < 5
