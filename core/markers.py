"""Hidden markers in the notes the agent writes, so every write can find its own earlier effect.

A marker is an HTML comment GitLab does not render: `<!-- gitlab-copilot-agent:KIND k=v k=v -->`.
Values are restricted to `[A-Za-z0-9._:/-]`, so text a human (or the model) writes cannot forge one
that parses differently, and `find` only trusts markers in notes authored by the agent itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PREFIX = "gitlab-copilot-agent"
_VALUE = re.compile(r"^[A-Za-z0-9._:/-]{1,200}$")
_MARKER = re.compile(r"<!-- " + re.escape(PREFIX) + r":([a-z-]+)((?: [a-z_]+=[A-Za-z0-9._:/-]+)*) -->")

SUMMARY = "summary"
FINDING = "finding"
FAILURE = "failure"
RESOLUTION = "resolution"
REPLY = "reply"


def marker(kind: str, **values: str) -> str:
    parts = []
    for key, value in values.items():
        if not _VALUE.match(value):
            raise ValueError(f"marker value for {key} has characters outside [A-Za-z0-9._:/-]")
        parts.append(f" {key}={value}")
    return f"<!-- {PREFIX}:{kind}{''.join(parts)} -->"


def parse(body: str, kind: str) -> dict[str, str] | None:
    """The values of the first marker of `kind` in `body`, or None."""
    for match in _MARKER.finditer(body or ""):
        if match.group(1) == kind:
            pairs = match.group(2).split()
            return dict(pair.split("=", 1) for pair in pairs)
    return None


def has(body: str, kind: str, **expected: str) -> bool:
    values = parse(body, kind)
    return values is not None and all(values.get(k) == v for k, v in expected.items())


def with_marker(text: str, kind: str, values: Mapping[str, str]) -> str:
    return f"{text.rstrip()}\n\n{marker(kind, **values)}"
