"""The two bounded channels between the worker and an agent Job: the task in, the result out.

In: the task travels in one environment variable, gzip-compressed and base64-encoded (a single
environment string is limited to 128 KiB by the kernel's MAX_ARG_STRLEN; compression buys room).
Out: the agent container writes its result to a file in the `result` volume (`write_result`) and
ends; only then does the `result` container start, read that file and print one signed frame, the
only thing in its log (`executors.job_result`). The executor reads that container's log back:

    ===== BEGIN AGENT RESULT status=ok bytes=<n> sha256=<hex> hmac=<hex> =====
    <n bytes of JSON on one line>
    ===== END AGENT RESULT =====

The length and digest prove the payload arrived whole (a log cut by the kubelet's rotation or a
`limitBytes` fails the check instead of yielding a truncated patch). The HMAC, with a per-Job key the
agent container never holds (executors.job_keys), proves the frame came from the result container.
The payload line is sealed: the result JSON compressed and encrypted (AES-256-GCM, a key derived
from the same per-Job key, the status as associated data), then base64. A pod log is what cluster
log collectors ship everywhere; with the result in the clear they would carry every finding and
patch (seed audit §8.2 #27). Only the worker, which holds the Job's key, reads it.
Exactly one frame is accepted: a log with a second one, forged or not, fails the run. A payload over
the cap is never written at all: the runner reports `ResultTooLarge` instead.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import json
import os
import re
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import TypeAdapter, ValidationError

from executors.tasks import AgentResult, AgentTask

TASK_ENV = "AGENT_TASK"
MAX_TASK_ENV_BYTES = 120 * 1024  # under MAX_ARG_STRLEN (128 KiB) with room for the variable's name
MAX_TASK_JSON_BYTES = 4 * 1024 * 1024  # decompression bound: a hostile value cannot balloon
MAX_RESULT_BYTES = 4 * 1024 * 1024
MAX_RESULT_FILE_BYTES = MAX_RESULT_BYTES + 64 * 1024  # the file wraps the result in {"status", ...}
_NONCE = 12
# The sealed payload line of the largest result: incompressible JSON, nonce and tag, in base64.
MAX_FRAME_PAYLOAD_BYTES = 4 * ((MAX_RESULT_BYTES + 1024 + _NONCE + 16 + 2) // 3)
_BEGIN = "===== BEGIN AGENT RESULT"
_ANY_HEADER = re.compile(r"^" + re.escape(_BEGIN), re.MULTILINE)
_HEADER = re.compile(
    r"===== BEGIN AGENT RESULT status=(?P<status>ok|error) bytes=(?P<bytes>\d{1,12}) "
    r"sha256=(?P<sha>[0-9a-f]{64}) hmac=(?P<mac>[0-9a-f]{64}) =====$"
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
def _mac(key: str, status: str, payload: bytes) -> str:
    return hmac.new(key.encode(), status.encode() + b"\n" + payload, hashlib.sha256).hexdigest()


def _sealing_key(key: str) -> AESGCM:
    # The per-Job key is 256 random bits (executors.job_keys): one hash separates the two uses.
    return AESGCM(hashlib.sha256(b"agent result sealing v1\n" + key.encode()).digest())


def seal(status: str, payload: bytes, key: str) -> bytes:
    nonce = os.urandom(_NONCE)
    sealed = _sealing_key(key).encrypt(nonce, zlib.compress(payload, 6), status.encode())
    return base64.b64encode(nonce + sealed)


def unseal(status: str, sealed: bytes, key: str) -> bytes:
    """The result JSON of a verified frame. Raises ChannelError when it does not open."""
    try:
        raw = base64.b64decode(sealed, validate=True)
        opened = _sealing_key(key).decrypt(raw[:_NONCE], raw[_NONCE:], status.encode())
        inflater = zlib.decompressobj()
        payload = inflater.decompress(opened, MAX_RESULT_FILE_BYTES + 1)
    except (binascii.Error, ValueError, zlib.error, InvalidTag) as exc:
        raise ChannelError(f"result frame does not open: {type(exc).__name__}") from None
    if len(payload) > MAX_RESULT_FILE_BYTES or inflater.unconsumed_tail:
        raise ChannelError(f"result frame inflates to more than {MAX_RESULT_FILE_BYTES} bytes")
    return payload


def signed_frame(status: str, payload: bytes, key: str) -> str:
    """The frame the result container prints (`key`: its per-Job result key); the payload sealed."""
    sealed = seal(status, payload, key)
    digest = hashlib.sha256(sealed).hexdigest()
    header = (
        f"{_BEGIN} status={status} bytes={len(sealed)} sha256={digest} hmac={_mac(key, status, sealed)} ====="
    )
    return f"{header}\n{sealed.decode()}\n{_FOOTER}\n"


def result_payload(result: AgentResult) -> dict[str, Any]:
    payload = result.model_dump_json().encode()
    if len(payload) > MAX_RESULT_BYTES:
        raise ResultTooLarge(f"agent result of {len(payload)} bytes exceeds the {MAX_RESULT_BYTES}-byte cap")
    return {"status": "ok", "payload": json.loads(payload)}


def error_payload(kind: str, message: str) -> dict[str, Any]:
    return {"status": "error", "payload": {"type": kind[:100], "message": message[:4000]}}


def write_result(path: Path, outcome: dict[str, Any]) -> None:
    """The agent container's hand-over: written whole, then renamed into place."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(outcome))
    os.replace(partial, path)


def read_result_file(path: Path) -> tuple[str, bytes]:
    """Status and payload bytes of the agent container's result file, for the result container.

    The file was written by agent code: no symlinks, no FIFOs, bounded size, a JSON object of the
    expected shape. Raises ChannelError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ChannelError(f"the agent container left no result file ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ChannelError("the agent container's result is not a regular file")
        raw = handle.read(MAX_RESULT_FILE_BYTES + 1)
    if len(raw) > MAX_RESULT_FILE_BYTES:
        raise ChannelError(f"the agent container's result file is over {MAX_RESULT_FILE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError:
        raise ChannelError("the agent container's result file is not JSON") from None
    if (
        not isinstance(data, dict)
        or data.get("status") not in ("ok", "error")
        or not isinstance(data.get("payload"), dict)
    ):
        raise ChannelError("the agent container's result file has not the result shape")
    return str(data["status"]), json.dumps(data["payload"]).encode()  # ASCII, one line


def read_frame(log: str, key: str) -> Frame:
    """The one frame in the result container's log, verified with the Job's result key.

    Raises ChannelError: no frame, more than one, or one that is damaged or not signed with `key`."""
    candidates = list(_ANY_HEADER.finditer(log))
    if not candidates:
        raise ChannelError("no result frame in the result container's log")
    if len(candidates) > 1:
        raise ChannelError(f"the result log holds {len(candidates)} frames; exactly one is accepted")
    line_end = log.find("\n", candidates[0].start())
    header = _HEADER.fullmatch(log, candidates[0].start(), line_end if line_end >= 0 else len(log))
    if header is None:
        raise ChannelError("the result frame's header is malformed or unsigned")
    size = int(header["bytes"])
    if size > MAX_FRAME_PAYLOAD_BYTES:
        raise ChannelError(
            f"result frame announces {size} bytes, over the {MAX_FRAME_PAYLOAD_BYTES}-byte cap"
        )
    body = log[header.end() + 1 :].encode()
    payload = body[:size]
    if len(payload) != size or not body[size:].startswith(f"\n{_FOOTER}".encode()):
        raise ChannelError(
            f"result frame is incomplete: {len(payload)} of {size} bytes before its end marker"
        )
    if hashlib.sha256(payload).hexdigest() != header["sha"]:
        raise ChannelError("result frame fails its sha256 check")
    if not hmac.compare_digest(_mac(key, header["status"], payload), header["mac"]):
        raise ChannelError("result frame fails its signature check (not written by the result container)")
    try:
        data = json.loads(unseal(header["status"], payload, key))
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
