"""Scoring posted review comments against the expected findings of a corpus. Pure functions.

Matching is by location, one to one: a comment matches an expected finding of the same MR in the
same file whose line is at most `window` lines away (the nearest one first). An expected finding
without a file (benchmarks that give only the comment text, e.g. Martian's golden comments) matches
any one comment of its MR that matched nothing located: an upper bound, reported as such.

- precision: matched comments / all comments (comments on clean MRs count as false positives)
- recall: matched expected findings / all expected findings
- line precision: matched comments within `tolerance` lines of their finding / located matches
- comments per clean MR: comments posted on MRs that should get none, per such MR
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_WINDOW = 10
DEFAULT_TOLERANCE = 2


@dataclass(frozen=True)
class Expected:
    file: str | None
    line: int | None
    severity: str = ""
    title: str = ""


@dataclass(frozen=True)
class Comment:
    file: str | None  # None: a comment the harness could not place (no file:line anywhere)
    line: int | None


@dataclass(frozen=True)
class CaseOutcome:
    case_id: str
    clean: bool
    expected: tuple[Expected, ...]
    comments: tuple[Comment, ...]
    tokens: int = 0
    seconds: float = 0.0
    status: str = "posted"


@dataclass
class CaseScore:
    case_id: str
    expected: int
    comments: int
    matched: int
    on_line: int
    located_matches: int
    unlocated_matches: int = 0


@dataclass
class Score:
    cases: list[CaseScore] = field(default_factory=list)
    expected: int = 0
    comments: int = 0
    matched: int = 0
    on_line: int = 0
    located_matches: int = 0
    unlocated_expected: int = 0
    clean_mrs: int = 0
    clean_comments: int = 0
    reviews: int = 0
    failed_reviews: int = 0
    tokens: int = 0
    seconds: float = 0.0

    @property
    def precision(self) -> float | None:
        return self.matched / self.comments if self.comments else None

    @property
    def recall(self) -> float | None:
        return self.matched / self.expected if self.expected else None

    @property
    def line_precision(self) -> float | None:
        return self.on_line / self.located_matches if self.located_matches else None

    @property
    def comments_per_clean_mr(self) -> float | None:
        return self.clean_comments / self.clean_mrs if self.clean_mrs else None

    @property
    def tokens_per_review(self) -> float | None:
        return self.tokens / self.reviews if self.reviews else None

    @property
    def seconds_per_review(self) -> float | None:
        return self.seconds / self.reviews if self.reviews else None

    def figures(self) -> dict[str, float | int | None]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "reviews": self.reviews,
            "failed_reviews": self.failed_reviews,
            "expected": self.expected,
            "unlocated_expected": self.unlocated_expected,
            "comments": self.comments,
            "matched": self.matched,
            "precision": rounded(self.precision),
            "recall": rounded(self.recall),
            "line_precision": rounded(self.line_precision),
            "comments_per_clean_mr": rounded(self.comments_per_clean_mr),
            "tokens_per_review": rounded(self.tokens_per_review),
            "seconds_per_review": rounded(self.seconds_per_review),
        }


def match_case(
    expected: Sequence[Expected], comments: Sequence[Comment], *, window: int, tolerance: int
) -> tuple[int, int, int, int]:
    """(matched, on_line, located_matches, unlocated_matches) of one MR."""
    pairs = []
    for ci, comment in enumerate(comments):
        if comment.file is None or comment.line is None:
            continue
        for ei, exp in enumerate(expected):
            if exp.file == comment.file and exp.line is not None:
                distance = abs(exp.line - comment.line)
                if distance <= window:
                    pairs.append((distance, ei, ci))
    used_expected: set[int] = set()
    used_comments: set[int] = set()
    on_line = 0
    for distance, ei, ci in sorted(pairs):
        if ei in used_expected or ci in used_comments:
            continue
        used_expected.add(ei)
        used_comments.add(ci)
        on_line += distance <= tolerance
    located = len(used_expected)
    unlocated_expected = [i for i, e in enumerate(expected) if e.file is None]
    spare_comments = [i for i in range(len(comments)) if i not in used_comments]
    unlocated = min(len(unlocated_expected), len(spare_comments))
    return located + unlocated, on_line, located, unlocated


def score(
    outcomes: Sequence[CaseOutcome], *, window: int = DEFAULT_WINDOW, tolerance: int = DEFAULT_TOLERANCE
) -> Score:
    total = Score()
    for outcome in outcomes:
        matched, on_line, located, unlocated = match_case(
            outcome.expected, outcome.comments, window=window, tolerance=tolerance
        )
        total.cases.append(
            CaseScore(
                outcome.case_id,
                len(outcome.expected),
                len(outcome.comments),
                matched,
                on_line,
                located,
                unlocated,
            )
        )
        total.expected += len(outcome.expected)
        total.unlocated_expected += sum(1 for e in outcome.expected if e.file is None)
        total.comments += len(outcome.comments)
        total.matched += matched
        total.on_line += on_line
        total.located_matches += located
        total.reviews += 1
        total.failed_reviews += outcome.status != "posted"
        total.tokens += outcome.tokens
        total.seconds += outcome.seconds
        if outcome.clean:
            total.clean_mrs += 1
            total.clean_comments += len(outcome.comments)
    return total
