"""Deterministic orchestration. Every workflow the worker runs is listed here."""

from workflows.diagnose import Diagnose

WORKFLOWS: list[type] = [Diagnose]
