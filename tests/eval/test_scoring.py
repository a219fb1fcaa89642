"""Scoring by location, by hand-counted examples; the corpus loader's refusals."""

from __future__ import annotations

import json

import pytest

from eval.corpus import CorpusError, load_case, load_corpus
from eval.scoring import CaseOutcome, Comment, Expected, score


def outcome(case_id, expected, comments, clean=False, tokens=100, seconds=2.0, status="posted"):
    return CaseOutcome(case_id, clean, tuple(expected), tuple(comments), tokens, seconds, status)


def test_exact_comments_score_one_everywhere():
    result = score(
        [outcome("a", [Expected("x.py", 5)], [Comment("x.py", 5)]), outcome("b", [], [], clean=True)]
    )
    f = result.figures()
    assert (f["precision"], f["recall"], f["line_precision"], f["comments_per_clean_mr"]) == (
        1.0,
        1.0,
        1.0,
        0.0,
    )
    assert (f["tokens_per_review"], f["seconds_per_review"]) == (100.0, 2.0)


def test_matching_is_one_to_one_by_file_and_nearest_line():
    expected = [Expected("x.py", 10), Expected("x.py", 14)]
    comments = [Comment("x.py", 13), Comment("x.py", 13), Comment("y.py", 10), Comment("x.py", 40)]
    result = score([outcome("a", expected, comments)], window=10, tolerance=2)
    (case,) = result.cases
    # 13 -> 14 (distance 1, on line), the second 13 -> 10 (distance 3, off line); y.py and 40 unmatched
    assert (case.matched, case.on_line, case.located_matches) == (2, 1, 2)
    assert result.precision == 0.5 and result.recall == 1.0 and result.line_precision == 0.5


def test_comments_on_clean_mrs_are_false_positives_and_counted_per_clean_mr():
    result = score(
        [
            outcome("defect", [Expected("a.go", 3)], [Comment("a.go", 3)]),
            outcome("clean1", [], [Comment("b.go", 1), Comment("b.go", 9)], clean=True),
            outcome("clean2", [], [], clean=True),
        ]
    )
    assert result.precision == pytest.approx(1 / 3) and result.comments_per_clean_mr == 1.0


def test_findings_without_a_location_match_by_count_only():
    expected = [Expected(None, None), Expected(None, None), Expected("a.ts", 4)]
    result = score([outcome("m", expected, [Comment("a.ts", 4), Comment("b.ts", 1)])])
    (case,) = result.cases
    assert (case.matched, case.located_matches, case.unlocated_matches) == (2, 1, 1)
    assert result.figures()["unlocated_expected"] == 2 and result.recall == pytest.approx(2 / 3)


def test_a_review_that_did_not_post_is_counted():
    result = score([outcome("a", [Expected("x", 1)], [], status="failed")])
    assert result.failed_reviews == 1 and result.recall == 0.0 and result.precision is None


@pytest.mark.parametrize(
    ("meta", "files", "message"),
    [
        ({"expected": [{"file": "a.py"}]}, {"head/a.py": "x\n"}, "both file and line"),
        ({"expected": [{"file": "a.py", "line": 9}]}, {"head/a.py": "x\n"}, "past the end"),
        ({"expected": [{"file": "b.py", "line": 1}]}, {"head/a.py": "x\n"}, "not in the head tree"),
        ({"expected": []}, {}, "changes nothing"),
        ({"expected": "none"}, {"head/a.py": "x\n"}, "must be a list"),
    ],
)
def test_bad_cases_are_refused_with_what_is_wrong(tmp_path, meta, files, message):
    case = tmp_path / "c1"
    (case / "base").mkdir(parents=True)
    (case / "base" / "README").write_text("base\n")
    (case / "case.json").write_text(json.dumps(meta))
    for path, text in files.items():
        (case / path).parent.mkdir(parents=True, exist_ok=True)
        (case / path).write_text(text)
    with pytest.raises(CorpusError, match=message):
        load_case(case)


def test_a_missing_or_empty_corpus_is_refused(tmp_path):
    with pytest.raises(CorpusError, match="no such corpus"):
        load_corpus(tmp_path / "nothing")
    with pytest.raises(CorpusError, match="no case directories"):
        load_corpus(tmp_path)
