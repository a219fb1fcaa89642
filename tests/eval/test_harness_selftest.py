"""`make eval`'s self-test: the shipped corpus through the real service (Temporal dev server, worker,
API, GitLab stand-in, the real Copilot CLI) with the planted brain answering from a sidecar. Exactly
as planted it scores 1.0 everywhere; a sidecar that misses one finding, shifts one and adds a false
one on a clean MR scores exactly that much lower. Both rounds run on one stack.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.brain import PlantedBrain, sidecar
from eval.corpus import load_corpus
from eval.harness import replay_in, service_stack
from eval.scoring import score

CORPUS = Path(__file__).resolve().parents[2] / "eval" / "corpus"


def _variant(answers: dict) -> dict:
    """Miss the Java string comparison, shift the Go finding by 4 lines (inside the match window of
    10, outside the line tolerance of 2), and add a false finding to the clean Python MR."""
    answers = json.loads(json.dumps(answers))
    java = answers["java-report-reader"]["findings"]
    answers["java-report-reader"]["findings"] = [f for f in java if "==" not in f["title"]]
    answers["go-config-loader"]["findings"][0]["line"] += 4
    answers["python-slugify-clean"]["findings"] = [
        {"file": "text/slug.py", "line": 12, "severity": "minor", "title": "Invented problem"}
    ]
    return answers


@pytest.mark.timeout(900)
async def test_the_harness_scores_its_corpus_exactly_as_planted(tmp_path):
    cases = load_corpus(CORPUS)
    languages = {c.language for c in cases}
    assert {"python", "go", "typescript", "java"} <= languages and sum(c.clean for c in cases) == 2
    planted = sidecar(cases)
    exact, variant = tmp_path / "exact.json", tmp_path / "variant.json"
    exact.write_text(json.dumps(planted))
    variant.write_text(json.dumps(_variant(planted)))
    brain = PlantedBrain(exact)
    async with service_stack(tmp_path / "stack", brain, None) as (client, gitlab):
        as_planted = score(await replay_in(client, gitlab, cases, prefix="exact"))
        brain.load(variant)
        perturbed = score(await replay_in(client, gitlab, cases, prefix="variant"))
    assert brain.unrecognised == 0
    figures = as_planted.figures()
    assert {k: figures[k] for k in ("reviews", "failed_reviews", "expected", "comments", "matched")} == {
        "reviews": 6, "failed_reviews": 0, "expected": 6, "comments": 6, "matched": 6,
    }  # fmt: skip
    assert (figures["precision"], figures["recall"], figures["line_precision"]) == (1.0, 1.0, 1.0)
    assert figures["comments_per_clean_mr"] == 0.0
    assert figures["tokens_per_review"] > 0 and figures["seconds_per_review"] > 0
    lower = perturbed.figures()
    assert (lower["comments"], lower["matched"], lower["expected"]) == (6, 5, 6)
    assert lower["precision"] == round(5 / 6, 4) and lower["recall"] == round(5 / 6, 4)
    assert lower["line_precision"] == 0.8  # 4 of the 5 matches on their line
    assert lower["comments_per_clean_mr"] == 0.5
