"""ADF → markdown: realistic Jira Cloud descriptions, then malformed and hostile documents."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import pytest

from core.adf import MAX_DEPTH, MIN_MAX_CHARS, adf_to_markdown


def doc(*blocks: Any) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(blocks)}


def text(value: str, *marks: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": value}
    if marks:
        node["marks"] = [m if isinstance(m, dict) else {"type": m} for m in marks]
    return node


def para(*inline: Any) -> dict[str, Any]:
    return {"type": "paragraph", "content": [text(i) if isinstance(i, str) else i for i in inline]}


def item(*blocks: Any) -> dict[str, Any]:
    return {"type": "listItem", "content": list(blocks)}


def cell(kind: str, value: str) -> dict[str, Any]:
    return {"type": kind, "attrs": {}, "content": [para(value)]}


CASES: list[tuple[str, Any, str]] = [
    ("none", None, ""),
    ("v2 wiki text passes through", "h2. Title\n*bold* {code}x{code}", "h2. Title\n*bold* {code}x{code}"),
    ("empty doc", doc(), ""),
    ("paragraphs", doc(para("one"), para("two")), "one\n\ntwo"),
    (
        "marks",
        doc(
            para(
                text("b", "strong"),
                " ",
                text("i", "em"),
                " ",
                text("c", "code"),
                " ",
                text("s", "strike"),
                " ",
                text("u", "underline"),
                " ",
                text("l", {"type": "link", "attrs": {"href": "https://example.com"}}),
                " ",
                text("bi", "strong", "em"),
            )
        ),
        "**b** *i* `c` ~~s~~ u [l](https://example.com) ***bi***",
    ),
    ("emphasis keeps spaces outside", doc(para("a", text(" bold ", "strong"), "b")), "a **bold** b"),
    ("code with backticks", doc(para(text("a`b", "code"))), "``a`b``"),
    (
        "headings",
        doc(*[{"type": "heading", "attrs": {"level": n}, "content": [text(f"H{n}")]} for n in (1, 3, 6)]),
        "# H1\n\n### H3\n\n###### H6",
    ),
    ("bad heading level", doc({"type": "heading", "attrs": {"level": 9}, "content": [text("H")]}), "# H"),
    (
        "nested lists with order",
        doc(
            {
                "type": "bulletList",
                "content": [
                    item(
                        para("top"),
                        {
                            "type": "orderedList",
                            "attrs": {"order": 3},
                            "content": [item(para("three")), item(para("four"))],
                        },
                    ),
                    item(para("second")),
                ],
            }
        ),
        "- top\n  3. three\n  4. four\n- second",
    ),
    (
        "code block with language and a fence inside",
        doc({"type": "codeBlock", "attrs": {"language": "python"}, "content": [text("  x = 1\n```\ny = 2")]}),
        "````python\n  x = 1\n```\ny = 2\n````",
    ),
    ("code block without language", doc({"type": "codeBlock", "content": [text("ls")]}), "```\nls\n```"),
    (
        "blockquote",
        doc({"type": "blockquote", "content": [para("quoted"), para("more")]}),
        "> quoted\n>\n> more",
    ),
    ("rule and hard break", doc(para("a", {"type": "hardBreak"}, "b"), {"type": "rule"}), "a  \nb\n\n---"),
    (
        "mention, emoji, cards",
        doc(
            para(
                {"type": "mention", "attrs": {"id": "5b10", "text": "@Ann Lee"}},
                " ",
                {"type": "mention", "attrs": {"id": "5b11", "displayName": "Bo"}},
                " ",
                {"type": "emoji", "attrs": {"shortName": ":tada:", "text": "🎉"}},
                {"type": "emoji", "attrs": {"shortName": ":custom:"}},
                " ",
                {"type": "inlineCard", "attrs": {"url": "https://jira/browse/PROJ-1"}},
            ),
            {"type": "blockCard", "attrs": {"url": "https://gitlab/mr/1"}},
        ),
        "@Ann Lee @Bo 🎉:custom: <https://jira/browse/PROJ-1>\n\n<https://gitlab/mr/1>",
    ),
    (
        "table with header, pipes and uneven rows",
        doc(
            {
                "type": "table",
                "content": [
                    {
                        "type": "tableRow",
                        "content": [cell("tableHeader", "Name"), cell("tableHeader", "A|B")],
                    },
                    {"type": "tableRow", "content": [cell("tableCell", "x")]},
                    {
                        "type": "tableRow",
                        "content": [
                            {"type": "tableCell", "content": [para("multi"), para("para")]},
                            cell("tableCell", "y"),
                        ],
                    },
                ],
            }
        ),
        "| Name | A\\|B |\n| --- | --- |\n| x |  |\n| multi para | y |",
    ),
    (
        "panel",
        doc({"type": "panel", "attrs": {"panelType": "warning"}, "content": [para("Careful")]}),
        "> **Warning:**\n> Careful",
    ),
    (
        "expand and nested expand",
        doc(
            {
                "type": "expand",
                "attrs": {"title": "Logs"},
                "content": [{"type": "nestedExpand", "attrs": {"title": ""}, "content": [para("inner")]}],
            }
        ),
        "**Logs**\n\ninner",
    ),
    (
        "status and date",
        doc(
            para(
                {"type": "status", "attrs": {"text": "IN PROGRESS", "color": "blue"}},
                " due ",
                {"type": "date", "attrs": {"timestamp": "1767225600000"}},
                " ",
                {"type": "date", "attrs": {"timestamp": "soon"}},
            )
        ),
        "[IN PROGRESS] due 2026-01-01 soon",
    ),
    (
        "media",
        doc(
            {
                "type": "mediaSingle",
                "content": [
                    {"type": "media", "attrs": {"id": "abc", "type": "file", "alt": "screenshot.png"}},
                    {"type": "caption", "content": [text("The error")]},
                ],
            },
            {"type": "mediaGroup", "content": [{"type": "media", "attrs": {"id": "d"}}]},
        ),
        "[attachment: screenshot.png]\nThe error\n\n[attachment]",
    ),
    (
        "tasks and decisions",
        doc(
            {
                "type": "taskList",
                "content": [
                    {"type": "taskItem", "attrs": {"state": "DONE"}, "content": [text("write")]},
                    {"type": "taskItem", "attrs": {"state": "TODO"}, "content": [text("test")]},
                    {
                        "type": "taskList",
                        "content": [
                            {"type": "taskItem", "attrs": {"state": "TODO"}, "content": [text("sub")]}
                        ],
                    },
                ],
            },
            {
                "type": "decisionList",
                "content": [
                    {"type": "decisionItem", "attrs": {"state": "DECIDED"}, "content": [text("Use X")]}
                ],
            },
        ),
        "- [x] write\n- [ ] test\n  - [ ] sub\n\n- Decided: Use X",
    ),
    (
        "unknown nodes keep their children's text",
        doc(
            {"type": "layoutSection", "content": [{"type": "layoutColumn", "content": [para("col")]}]},
            {"type": "bodiedExtension", "content": [para("ext")]},
            {"type": "futureBlock", "content": [para("new"), {"type": "futureInline", "text": "tt"}]},
            para({"type": "inlineExtension", "attrs": {"text": "inline-ext"}}),
        ),
        "col\n\next\n\nnew\n\ntt\n\ninline-ext",
    ),
    (
        "malformed parts never raise",
        doc(
            "bare string",
            para(42, None, {"text": "no type"}, text("ok")),
            {"type": "paragraph", "content": "content as string"},
            {"type": "bulletList", "content": [para("not an item")]},
            {"type": "heading", "attrs": "bad", "content": [text("h")]},
            {"type": "table", "content": [para("loose row")]},
        ),
        "bare string\n\n42no typeok\n\ncontent as string\n\n- not an item\n\n# h\n\n| loose row |\n| --- |",
    ),
    ("a node list instead of a doc", [para("a"), para("b")], "a\n\nb"),
]


@pytest.mark.parametrize(("name", "document", "expected"), CASES, ids=[case[0] for case in CASES])
def test_renders_markdown(name: str, document: Any, expected: str) -> None:
    assert adf_to_markdown(document) == expected


def _all_text(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return own + [t for child in node.get("content", []) for t in _all_text(child)]
    return []


def test_realistic_issue_loses_no_text() -> None:
    description = doc(
        {"type": "heading", "attrs": {"level": 2}, "content": [text("Context")]},
        para(
            "Users see ",
            text("500", "code"),
            " on ",
            text("/login", {"type": "link", "attrs": {"href": "/x"}}),
        ),
        {"type": "bulletList", "content": [item(para("Repro: sign in")), item(para("Expected: 200"))]},
        {
            "type": "codeBlock",
            "attrs": {"language": "text"},
            "content": [text("Traceback (most recent call last)")],
        },
        {"type": "panel", "attrs": {"panelType": "info"}, "content": [para("Seen since 1.4")]},
    )
    rendered = adf_to_markdown(description)
    for fragment in _all_text(description):
        assert fragment in rendered


def test_hostile_depth_renders_the_rest_as_text_without_recursion_error() -> None:
    node: dict[str, Any] = text("bottom")
    for level in range(sys.getrecursionlimit() * 5):
        wrapper = "blockquote" if level % 2 else "bulletList"
        child = item(node) if wrapper == "bulletList" else node
        extra = [para(f"level{level}")] if level % 500 == 0 else []
        node = {"type": wrapper, "content": [child, *extra]}
    started = time.monotonic()
    rendered = adf_to_markdown(doc(node))
    assert time.monotonic() - started < 5
    assert "bottom" in rendered
    assert all(f"level{n}" in rendered for n in range(0, sys.getrecursionlimit() * 5, 500))
    assert rendered.count(">") <= MAX_DEPTH  # structure stops at the depth limit, text does not


def test_self_referencing_structure_terminates() -> None:
    loop: dict[str, Any] = {"type": "doc", "content": [text("x")]}
    loop["content"].append(loop)
    rendered = adf_to_markdown(loop)
    assert rendered.startswith("x")


def test_exponentially_shared_nodes_are_bounded() -> None:
    node = para("leaf")
    for _ in range(60):  # 2**60 paths if walked naively
        node = {"type": "blockquote", "content": [node, node]}
    started = time.monotonic()
    rendered = adf_to_markdown(node, max_chars=1_000)
    assert time.monotonic() - started < 5
    assert "leaf" in rendered and len(rendered) <= 1_000


@pytest.mark.parametrize("max_chars", [MIN_MAX_CHARS, 500, 10_000])
def test_oversized_output_is_cut_with_an_explicit_marker(max_chars: int) -> None:
    big = doc(*[para(f"paragraph {n} " + "words " * 20) for n in range(2_000)])
    rendered = adf_to_markdown(big, max_chars=max_chars)
    assert len(rendered) <= max_chars
    omitted = int(re.search(r"\[truncated: (\d+) more characters\]$", rendered).group(1))  # type: ignore[union-attr]
    assert omitted == len(adf_to_markdown(big, max_chars=10**9)) - rendered.index("\n\n[truncated")


def test_oversized_plain_string_is_cut_too() -> None:
    rendered = adf_to_markdown("x" * 1_000, max_chars=100)
    kept, marker = rendered.split("\n\n")
    assert len(rendered) <= 100 and set(kept) == {"x"}
    assert marker == f"[truncated: {1_000 - len(kept)} more characters]"


def test_large_document_renders_fast() -> None:
    big = doc(*[para(text(f"word{n} ", "strong"), "plain") for n in range(20_000)])
    started = time.monotonic()
    rendered = adf_to_markdown(big, max_chars=10**7)
    assert time.monotonic() - started < 3
    assert "**word19999**" in rendered and "[truncated" not in rendered


def test_json_round_trip_of_a_real_payload() -> None:
    payload = json.loads(
        '{"type":"doc","version":1,"content":[{"type":"paragraph","content":['
        '{"type":"text","text":"Fix "},{"type":"text","text":"it","marks":[{"type":"strong"}]}]}]}'
    )
    assert adf_to_markdown(payload) == "Fix **it**"


@pytest.mark.parametrize("bad", [42, 3.5, b"bytes", object()])
def test_unsupported_input_types_raise_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="ADF document must be"):
        adf_to_markdown(bad)


def test_too_small_cap_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        adf_to_markdown(doc(), max_chars=MIN_MAX_CHARS - 1)
