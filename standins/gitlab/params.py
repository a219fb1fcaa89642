"""Request parameters: JSON bodies, form bodies and query strings with Rails-style brackets
(`position[line_range][start][line_code]=...`), merged the way Grape merges them."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from standins.gitlab.errors import ApiError

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
MAX_DEPTH = 8


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn bracketed keys into nested dicts; keys it cannot parse are kept verbatim."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))] if match else [key]
        if len(parts) > MAX_DEPTH:
            raise ApiError(400, f"{parts[0]} is nested too deeply", key="error")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return out


def parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(400, "400 Bad request - body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "400 Bad request - body must be a JSON object")
        return data
    if "multipart" in content_type:
        raise ApiError(415, "415 Unsupported Media Type")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "400 Bad request - body is not UTF-8") from None
    return nest(parse_qsl(text, keep_blank_values=True))


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None


def as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} is invalid", key="error") from None
