"""An API error carries GitLab's status and body so every layer can raise the same thing."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, message: Any, *, key: str = "message") -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.body = {key: message}


def not_found(what: str | None = None) -> ApiError:
    return ApiError(404, f"404 {what} Not Found" if what else "404 Not found")


def missing_param(name: str) -> ApiError:
    # Grape's parameter validation answers with "error", not "message".
    return ApiError(400, f"{name} is missing", key="error")


def forbidden() -> ApiError:
    return ApiError(403, "403 Forbidden")
