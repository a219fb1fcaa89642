"""Acceptance criteria found in issue text (ADF via core/adf.py, wiki via core/jira_markup.py), and
the coverage claim checked against the change and the service's own test run."""

from core.acceptance import acceptance_criteria, map_evidence
from core.adf import adf_to_markdown
from core.jira_markup import markdown_to_adf, markdown_to_wiki, wiki_to_markdown


def _task_list(*items: str) -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 3},
                "content": [{"type": "text", "text": "Acceptance criteria"}],
            },
            {
                "type": "taskList",
                "attrs": {"localId": "t"},
                "content": [
                    {
                        "type": "taskItem",
                        "attrs": {"localId": str(n), "state": "TODO"},
                        "content": [{"type": "text", "text": t}],
                    }
                    for n, t in enumerate(items)
                ],
            },
            {"type": "paragraph", "content": [{"type": "text", "text": "Notes: not a criterion."}]},
        ],
    }


def test_adf_checklist_under_a_heading():
    text = adf_to_markdown(_task_list("mul(2, 3) returns 6", "mul rejects strings"))
    assert acceptance_criteria(text) == ["mul(2, 3) returns 6", "mul rejects strings"]


def test_wiki_section_and_label_line():
    wiki = "h2. Goal\nMultiply.\nh3. Acceptance Criteria\n* returns the product\n# handles zero\nh3. Notes\n* not this"
    assert acceptance_criteria(wiki_to_markdown(wiki)) == ["returns the product", "handles zero"]
    assert acceptance_criteria(
        "Some text.\n**Acceptance criteria:**\n- a works\n- b works\n\nLater prose."
    ) == [
        "a works",
        "b works",
    ]


def test_given_when_then_scenarios_and_bare_checklists():
    text = "Given two numbers\nWhen I call mul\nThen I get their product\n\nGiven a string\nWhen I call mul\nThen it raises"
    assert acceptance_criteria(text) == [
        "Given two numbers When I call mul Then I get their product",
        "Given a string When I call mul Then it raises",
    ]
    assert acceptance_criteria("- [ ] one\n- [x] two\n- plain item") == ["one", "two"]
    assert acceptance_criteria("Just make it faster.") == []


def test_coverage_is_never_taken_on_the_agents_word():
    criteria = ["a", "b", "c", "d", "e"]
    answers = {
        1: ("addressed", ["tests/test_a.py"], ""),
        2: ("addressed", [], "trust me"),
        3: ("addressed", ["tests/missing.py"], ""),
        4: ("not_covered", [], "needs a browser"),
    }
    mapped = map_evidence(
        criteria,
        answers,
        changed_files={"tests/test_a.py"},
        existing_files=set(),
        tests_passed=True,
        tests_ran=True,
    )
    assert [m.covered for m in mapped] == [True, False, False, False, False]
    assert "no test named" in mapped[1].reason and "not in the change" in mapped[2].reason
    assert mapped[3].reason == "needs a browser" and "did not answer" in mapped[4].reason
    failing = map_evidence(
        criteria[:1],
        answers,
        changed_files={"tests/test_a.py"},
        existing_files=set(),
        tests_passed=False,
        tests_ran=True,
    )
    assert not failing[0].covered and failing[0].reason == "the test run failed"


def test_the_services_comments_in_both_formats():
    text = "## Plan\n\nUse `mul` and [docs](https://example.com/d).\n- one\n- two\n\n```python\nx = 1\n```"
    wiki = markdown_to_wiki(text)
    assert wiki.startswith("h2. Plan") and "{{mul}}" in wiki and "[docs|https://example.com/d]" in wiki
    assert "* one" in wiki and "{code:python}\nx = 1\n{code}" in wiki
    assert wiki_to_markdown(wiki).replace("\n\n", "\n") == text.replace("\n\n", "\n")
    doc = markdown_to_adf(text)
    assert [n["type"] for n in doc["content"]] == ["heading", "paragraph", "bulletList", "codeBlock"]
    assert adf_to_markdown(doc).count("`mul`") == 1
