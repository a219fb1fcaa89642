"""Kubernetes `Status` error bodies and the exception that carries them to the HTTP layer.

The official client turns a non-2xx answer into `ApiException(status=..., body=...)`; callers branch on
`status` and on the `reason` inside the body, so both must be what a real API server would send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cause:
    field: str
    reason: str
    message: str


@dataclass
class ApiError(Exception):
    """An API failure rendered as a Kubernetes `Status` (kind Status, status Failure)."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _resource(kind: str, group: str) -> str:
    return f"{kind}.{group}" if group else kind


def not_found(kind: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{_resource(kind, group)} "{name}" not found',
        {"name": name, "group": group, "kind": kind} if group else {"name": name, "kind": kind},
    )


def already_exists(kind: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{_resource(kind, group)} "{name}" already exists',
        {"name": name, "group": group, "kind": kind} if group else {"name": name, "kind": kind},
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid, worded like the API server's field validation ("Job.batch "x" is invalid: ...")."""
    summary = "; ".join(f"{c.field}: {c.message}" for c in causes)
    qualified = f"{kind}.{group}" if group else kind
    details: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
    }
    if group:
        details["group"] = group
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def success(kind: str, group: str, name: str, uid: str) -> dict[str, Any]:
    """The body a DELETE answers with once the object is gone."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": kind, "uid": uid},
    }
