"""The planted brain: a scripted model that answers each review with the findings planted in the
corpus, read from a sidecar file the harness writes (never part of a repository, never seen by the
service). It makes `make eval` a self-test of the harness: replayed through the real service, the
planted corpus must score exactly as planted, and a sidecar that misses, shifts or adds a finding
must lower the figures by exactly that much.

A review is recognised by the set of files its diff adds lines to (the harness checks that no two
cases share one), so reviews may run concurrently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.corpus import Case, CorpusError
from standins.brains import added_lines
from standins.model_server import ChatRequest, Reply, ToolCall


def sidecar(cases: list[Case]) -> dict[str, Any]:
    """The planted answers of `cases`: per case, the files its diff adds lines to and its findings."""
    answers: dict[str, Any] = {}
    seen: dict[frozenset[str], str] = {}
    for case in cases:
        paths = frozenset(p for p in case.changed_paths if p in case.head)
        if paths in seen:
            raise CorpusError(
                f"{case.id} and {seen[paths]} change the same files: the planted brain cannot tell them apart"
            )
        seen[paths] = case.id
        answers[case.id] = {
            "paths": sorted(paths),
            "findings": [
                {
                    "file": e.file,
                    "line": e.line,
                    "severity": e.severity or "major",
                    "title": e.title or "Planted defect",
                }
                for e in case.expected
                if e.file is not None
            ],
        }
    return answers


def _report(finding: dict[str, Any]) -> ToolCall:
    return ToolCall(
        "reviewer-report_finding",
        {
            "file": finding["file"],
            "line": finding["line"],
            "side": "new",
            "severity": finding.get("severity", "major"),
            "title": finding.get("title", "Planted defect"),
            "body": finding.get("body", "Planted by the evaluation corpus."),
        },
    )


class PlantedBrain:
    def __init__(self, sidecar_path: Path) -> None:
        self.unrecognised = 0  # reviews whose diff matched no case (a harness bug if not 0)
        self.load(sidecar_path)

    def load(self, sidecar_path: Path) -> None:
        """Answer from this sidecar from now on (a new round of reviews)."""
        answers = json.loads(sidecar_path.read_text(encoding="utf-8"))
        self._by_paths = {frozenset(a["paths"]): (case, a["findings"]) for case, a in answers.items()}

    def __call__(self, request: ChatRequest) -> Reply:
        if not request.offers("reviewer-finish_review"):
            return Reply.text("The planted brain only reviews.")
        called = {r.name for r in request.tool_results}
        if "reviewer-finish_review" in called:
            return Reply.text("Review complete.")
        paths = frozenset(a.path for a in added_lines(request.prompt))
        case, findings = self._by_paths.get(paths, (None, []))
        if case is None:
            self.unrecognised += 1
        if findings and "reviewer-report_finding" not in called:
            return Reply(tool_calls=tuple(_report(f) for f in findings))
        return Reply.call(
            "reviewer-finish_review", summary=f"{len(findings)} finding(s) in {case or 'an unknown case'}."
        )
