"""Errors every layer may raise and the activities translate for Temporal (activities/http_errors.py)."""

from __future__ import annotations


class PermanentError(Exception):
    """An error retrying cannot fix; `kind` names it for the UI and for the workflow."""

    def __init__(self, message: str, kind: str = "PermanentError") -> None:
        super().__init__(message)
        self.kind = kind
