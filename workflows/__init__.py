"""Deterministic orchestration. Every workflow the worker runs is listed here."""

from workflows.diagnose import Diagnose
from workflows.review_mr import ReviewMR

WORKFLOWS: list[type] = [Diagnose, ReviewMR]
