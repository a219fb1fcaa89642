"""The two bounded channels between the worker and an agent Job: the task in, the result out.

In: the task travels in one environment variable, gzip-compressed and base64-encoded (a single
environment string is limited to 128 KiB by the kernel's MAX_ARG_STRLEN; compression buys room).
Out: the runner prints one frame on its stdout, the last thing it writes, and the executor reads it
back from the terminated container's log:

    ===== BEGIN AGENT RESULT status=ok bytes=<n> sha256=<hex> =====
    <n bytes of JSON on one line>
    ===== END AGENT RESULT =====

The length and digest prove the payload arrived whole (a log cut by the kubelet's rotation or a
`limitBytes` fails the check instead of yielding a truncated patch). A payload over the cap is never
written at all: the runner reports `ResultTooLarge` instead.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from executors.tasks import AgentResult, AgentTask

TASK_ENV = "AGENT_TASK"
MAX_TASK_ENV_BYTES = 120 * 1024  # under MAX_ARG_STRLEN (128 KiB) with room for the variable's name
MAX_TASK_JSON_BYTES = 4 * 1024 * 1024  # decompression bound: a hostile value cannot balloon
MAX_RESULT_BYTES = 4 * 1024 * 1024
_HEADER = re.compile(
    r"^===== BEGIN AGENT RESULT status=(?P<status>ok|error) bytes=(?P<bytes>\d{1,12}) "
    r"sha256=(?P<sha>[0-9a-f]{64}) =====$",
    re.MULTILINE,
)
_FOOTER = "===== END AGENT RESULT ====="
_TASK = TypeAdapter(AgentTask)


class ResultTooLarge(Exception):
    """The agent's result exceeds MAX_RESULT_BYTES; it is refused, never truncated."""


class ChannelError(Exception):
    """The log holds no intact result frame."""


@dataclass(frozen=True)
class Frame:
    status: str  # "ok" | "error"
    payload: dict[str, Any]


# --- the task ------------------------------------------------------------------------------------
def encode_task(task: Any) -> str:
    """The task as the value of TASK_ENV. Raises ValueError when it does not fit."""
    raw = _TASK.dump_json(task)
    encoded = base64.b64encode(gzip.compress(raw, mtime=0)).decode()
    if len(encoded) > MAX_TASK_ENV_BYTES:
        raise ValueError(
            f"agent task too large for a Job: {len(raw)} bytes of JSON compress to {len(encoded)} "
            f"bytes, over the {MAX_TASK_ENV_BYTES}-byte limit of one environment variable"
        )
    return encoded


def decode_task(value: str) -> Any:
    """The task from TASK_ENV. Raises ValueError for anything malformed, oversized or invalid."""
    if len(value) > MAX_TASK_ENV_BYTES:
        raise ValueError(f"{TASK_ENV} is over {MAX_TASK_ENV_BYTES} bytes")
    try:
        compressed = base64.b64decode(value, validate=True)
        inflater = zlib.decompressobj(wbits=31)  # gzip framing
        raw = inflater.decompress(compressed, MAX_TASK_JSON_BYTES + 1)
    except (binascii.Error, zlib.error) as exc:
        raise ValueError(f"{TASK_ENV} is not base64 gzip: {exc}") from None
    if len(raw) > MAX_TASK_JSON_BYTES or inflater.unconsumed_tail:
        raise ValueError(f"{TASK_ENV} inflates to more than {MAX_TASK_JSON_BYTES} bytes")
    try:
        return _TASK.validate_json(raw)
    except ValidationError as exc:
        raise ValueError(f"{TASK_ENV} is not a valid agent task: {exc.error_count()} errors") from None


# --- the result ----------------------------------------------------------------------------------
def _frame(status: str, payload: bytes) -> str:
    digest = hashlib.sha256(payload).hexdigest()
    header = f"===== BEGIN AGENT RESULT status={status} bytes={len(payload)} sha256={digest} ====="
    return f"{header}\n{payload.decode()}\n{_FOOTER}\n"


def result_frame(result: AgentResult) -> str:
    payload = result.model_dump_json().encode()
    if len(payload) > MAX_RESULT_BYTES:
        raise ResultTooLarge(f"agent result of {len(payload)} bytes exceeds the {MAX_RESULT_BYTES}-byte cap")
    return _frame("ok", payload)


def error_frame(kind: str, message: str) -> str:
    payload = json.dumps({"type": kind[:100], "message": message[:4000]}).encode()
    return _frame("error", payload)


def read_frame(log: str) -> Frame:
    """The last frame in a container log, verified. Raises ChannelError."""
    headers = list(_HEADER.finditer(log))
    if not headers:
        raise ChannelError("no result frame in the agent container's log")
    header = headers[-1]
    size = int(header["bytes"])
    if size > MAX_RESULT_BYTES:
        raise ChannelError(f"result frame announces {size} bytes, over the {MAX_RESULT_BYTES}-byte cap")
    body = log[header.end() + 1 :].encode()
    payload = body[:size]
    if len(payload) != size or not body[size:].startswith(f"\n{_FOOTER}".encode()):
        raise ChannelError(
            f"result frame is incomplete: {len(payload)} of {size} bytes before its end marker"
        )
    if hashlib.sha256(payload).hexdigest() != header["sha"]:
        raise ChannelError("result frame fails its sha256 check")
    try:
        data = json.loads(payload)
    except ValueError:
        raise ChannelError("result frame is not JSON") from None
    if not isinstance(data, dict):
        raise ChannelError("result frame is not a JSON object")
    return Frame(header["status"], data)


def parse_result(frame: Frame) -> AgentResult:
    try:
        return AgentResult.model_validate(frame.payload)
    except ValidationError as exc:
        raise ChannelError(f"result frame is not a valid agent result: {exc.error_count()} errors") from None
