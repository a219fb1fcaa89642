"""What counts as a plan decision in a Jira comment, and which severities block an agent MR."""

import pytest

from activities.plan_approval import parse_decision, plan_markdown
from activities.review_loop import blocks
from contracts.reports import FindingAnswer, Plan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("approve", ("approve", "")),
        ("Approved.", ("approve", "")),
        ("**approve**", ("approve", "")),
        ("/approve", ("approve", "")),
        ("changes: handle zero\nand negatives", ("changes", "handle zero\nand negatives")),
        ("Changes : use math.prod", ("changes", "use math.prod")),
        ("I approve of the general idea but", None),  # prose is not a decision
        ("do not approve", None),
        ("approve\nbut also change X", ("approve", "")),  # the first line decides
        ("", None),
    ],
)
def test_decisions_are_the_first_line_only(text, expected):
    assert parse_decision(text) == expected


def test_plan_comment_lists_each_part_and_strips_hidden_characters():
    plan = Plan(
        approach="Add `mul`.\u202e",
        files=["mul.py"],
        tests=["tests/test_mul.py"],
        risks=[],
        open_questions=["zero?"],
    )
    text = plan_markdown(plan, 2)
    assert text.startswith("## Implementation plan (round 2)")
    assert "### Files\n- mul.py" in text and "### Open questions\n- zero?" in text and "### Risks" not in text
    assert "\u202e" not in text


def test_stricter_severity_for_agent_mrs():
    assert blocks("minor", "minor") and blocks("critical", "minor") and not blocks("info", "minor")
    assert not blocks("minor", "major") and blocks("major", "major")


def test_an_answer_needs_a_real_reason():
    with pytest.raises(ValueError):
        FindingAnswer(thread_id="t1", action="dismissed", reason="ok")
