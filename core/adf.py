"""Atlassian Document Format (Jira Cloud v3 rich text) rendered as markdown for prompts and MR text.

The one promise is that no text is lost: every node type we do not know renders its children's text,
documents nested deeper than `MAX_DEPTH` render the rest as plain text (no RecursionError), and an
oversized result is cut with an explicit marker instead of silently. Text is not escaped: the reader is
a model or a markdown renderer, and escaping would change what the issue's author wrote. Only table
cells escape `|` (it would break the table), and inline code picks a fence longer than any backtick run.

Input contract of `adf_to_markdown`:
- `None` gives "".
- A `str` (Jira v2 wiki or plain text) is returned unchanged, cut with the marker past `max_chars`.
- A `dict` is an ADF node (normally `{"type": "doc", ...}`); a `list` is a node list (a doc's content).
  Malformed parts never raise: a missing `type` is an unknown node, a scalar child renders as its text,
  non-list `content` is ignored only if it is not a node or text.
- Any other type raises `TypeError`; `max_chars` below `MIN_MAX_CHARS` raises `ValueError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

DEFAULT_MAX_CHARS = 100_000
MIN_MAX_CHARS = 64
MAX_DEPTH = 48

_INLINE_TYPES = frozenset(
    {"text", "hardBreak", "mention", "emoji", "inlineCard", "status", "date", "mediaInline", "placeholder"}
)
_PANEL_LABELS = {
    "info": "Info",
    "note": "Note",
    "warning": "Warning",
    "success": "Success",
    "error": "Error",
    "tip": "Tip",
    "custom": "Panel",
}


class _Exhausted(Exception):
    """Raised inside the renderer when the node budget runs out (shared or absurdly many nodes)."""


def adf_to_markdown(doc: dict[str, Any] | list[Any] | str | None, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Render an ADF document (or v2 plain text) as markdown of at most `max_chars` characters."""
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")
    if doc is None:
        return ""
    if isinstance(doc, str):
        return _cap(doc, max_chars)
    if not isinstance(doc, dict | list):
        raise TypeError(f"ADF document must be a dict, list, str or None, not {type(doc).__name__}")
    # Every node costs at least one step; a budget proportional to the output cap bounds the work on
    # hostile inputs (a Python structure reusing the same node many times) without capping real docs.
    renderer = _Renderer(node_budget=2 * max_chars + 10_000)
    try:
        text = renderer.blocks(doc if isinstance(doc, list) else [doc], 0)
    except _Exhausted:
        text = _plain_text(doc, limit=max_chars + 1)
    return _cap(text.strip("\n"), max_chars)


def _cap(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    keep = max_chars - len(_truncation_marker(len(text)))
    return text[:keep] + _truncation_marker(len(text) - keep)


def _truncation_marker(omitted: int) -> str:
    return f"\n\n[truncated: {omitted} more characters]"


class _Renderer:
    def __init__(self, node_budget: int) -> None:
        self._budget = node_budget

    def _spend(self) -> None:
        self._budget -= 1
        if self._budget < 0:
            raise _Exhausted

    # --- block level --------------------------------------------------------------------------------

    def blocks(self, nodes: list[Any], depth: int, sep: str = "\n\n") -> str:
        """Render a block sequence; runs of inline nodes found at block level form a paragraph."""
        parts: list[str] = []
        run: list[Any] = []
        for node in nodes:
            if _is_inline(node):
                run.append(node)
                continue
            if run:
                parts.append(self.inline(run, depth))
                run = []
            parts.append(self.block(node, depth))
        if run:
            parts.append(self.inline(run, depth))
        return sep.join(part for part in parts if part)

    def block(self, node: Any, depth: int) -> str:
        self._spend()
        if not isinstance(node, dict):
            return _scalar_text(node)
        if depth >= MAX_DEPTH:
            return _plain_text(node)
        kind = node.get("type")
        content = _content(node)
        attrs = _attrs(node)
        inner = depth + 1
        match kind:
            case "doc" | "layoutSection" | "layoutColumn" | "bodiedExtension":
                return self.blocks(content, inner)
            case "paragraph":
                return self.inline(content, inner)
            case "heading":
                level = attrs.get("level")
                level = level if isinstance(level, int) and 1 <= level <= 6 else 1
                return "#" * level + " " + self.inline(content, inner)
            case "codeBlock":
                return _fenced(_code_text(content), attrs.get("language"))
            case "blockquote":
                return _prefix_lines(self.blocks(content, inner), "> ")
            case "panel":
                label = _PANEL_LABELS.get(str(attrs.get("panelType", "info")), "Panel")
                return _prefix_lines(f"**{label}:**\n" + self.blocks(content, inner), "> ")
            case "rule":
                return "---"
            case "bulletList":
                return self._list(content, inner, lambda _: "- ")
            case "orderedList":
                start = attrs.get("order", 1)
                start = start if isinstance(start, int) and start >= 0 else 1
                return self._list(content, inner, lambda index: f"{start + index}. ")
            case "taskList":
                return self._task_list(content, inner)
            case "decisionList":
                return self._decision_list(content, inner)
            case "listItem" | "taskItem" | "decisionItem":
                # Only reachable outside their list (malformed): keep the text as a one-item list.
                return self._list([node], inner, lambda _: "- ")
            case "table":
                return self._table(content, inner)
            case "expand" | "nestedExpand":
                title = attrs.get("title")
                body = self.blocks(content, inner)
                return f"**{title}**\n\n{body}" if isinstance(title, str) and title else body
            case "mediaSingle" | "mediaGroup":
                return self.blocks(content, inner, sep="\n")
            case "media":
                return _media(attrs)
            case "caption":
                return self.inline(content, inner)
            case "blockCard" | "embedCard":
                return _card(attrs)
            case _:
                return self._unknown(node, inner)

    def _unknown(self, node: dict[str, Any], depth: int) -> str:
        parts = [node["text"]] if isinstance(node.get("text"), str) else []
        content = _content(node)
        if content:
            parts.append(self.blocks(content, depth))
        if not parts and isinstance(_attrs(node).get("text"), str):
            parts.append(_attrs(node)["text"])
        return "\n\n".join(part for part in parts if part)

    def _list(self, items: list[Any], depth: int, marker: Callable[[int], str]) -> str:
        lines = []
        for index, item in enumerate(items):
            self._spend()
            if isinstance(item, dict) and item.get("type") == "listItem":
                body = self.blocks(_content(item), depth + 1, sep="\n")
            elif isinstance(item, dict) and item.get("type") in ("taskItem", "decisionItem"):
                body = self.inline(_content(item), depth + 1)
            else:
                body = self.block(item, depth + 1)
            lines.append(_hang(marker(index), body))
        return "\n".join(lines)

    def _task_list(self, items: list[Any], depth: int) -> str:
        lines = []
        for item in items:
            self._spend()
            if isinstance(item, dict) and item.get("type") == "taskItem":
                box = "[x]" if _attrs(item).get("state") == "DONE" else "[ ]"
                lines.append(_hang(f"- {box} ", self.inline(_content(item), depth + 1)))
            elif isinstance(item, dict) and item.get("type") == "taskList":
                lines.append(_prefix_lines(self._task_list(_content(item), depth + 1), "  "))
            else:
                lines.append(self.block(item, depth + 1))
        return "\n".join(lines)

    def _decision_list(self, items: list[Any], depth: int) -> str:
        lines = []
        for item in items:
            self._spend()
            if isinstance(item, dict) and item.get("type") == "decisionItem":
                state = "Decided" if _attrs(item).get("state") == "DECIDED" else "Undecided"
                lines.append(_hang(f"- {state}: ", self.inline(_content(item), depth + 1)))
            else:
                lines.append(self.block(item, depth + 1))
        return "\n".join(lines)

    def _table(self, rows: list[Any], depth: int) -> str:
        grid: list[list[str]] = []
        for row in rows:
            self._spend()
            cells = _content(row) if isinstance(row, dict) and row.get("type") == "tableRow" else [row]
            grid.append([_cell(self.blocks(_cell_content(cell), depth + 1, sep=" ")) for cell in cells])
        if not grid:
            return ""
        width = max(len(row) for row in grid) or 1
        grid = [row + [""] * (width - len(row)) for row in grid]
        # Markdown needs a header row; ADF tables often have none, so the first row takes that place.
        lines = [_row(grid[0]), _row(["---"] * width)]
        lines.extend(_row(row) for row in grid[1:])
        return "\n".join(lines)

    # --- inline level -------------------------------------------------------------------------------

    def inline(self, nodes: list[Any], depth: int) -> str:
        out: list[str] = []
        for node in nodes:
            self._spend()
            if not isinstance(node, dict):
                out.append(_scalar_text(node))
                continue
            if depth >= MAX_DEPTH:
                out.append(_plain_text(node))
                continue
            kind = node.get("type")
            attrs = _attrs(node)
            match kind:
                case "text":
                    out.append(_marked(_scalar_text(node.get("text", "")), node.get("marks")))
                case "hardBreak":
                    out.append("  \n")
                case "mention":
                    name = attrs.get("text") or attrs.get("displayName") or attrs.get("id") or ""
                    out.append("@" + str(name).removeprefix("@"))
                case "emoji":
                    out.append(str(attrs.get("text") or attrs.get("shortName") or ""))
                case "inlineCard":
                    out.append(_card(attrs))
                case "status":
                    out.append(f"[{attrs.get('text', '')}]")
                case "date":
                    out.append(_date(attrs.get("timestamp")))
                case "mediaInline":
                    out.append(_media(attrs))
                case "placeholder":
                    out.append(str(attrs.get("text", "")))
                case _ if _content(node) and not _is_inline(node):
                    # A block inside a paragraph (malformed): keep its text on the line.
                    out.append(" ".join(self.block(node, depth + 1).split("\n")))
                case _:
                    out.append(self._unknown(node, depth + 1))
        return "".join(out)


# --- helpers ------------------------------------------------------------------------------------------


def _is_inline(node: Any) -> bool:
    return not isinstance(node, dict) or node.get("type") in _INLINE_TYPES


def _content(node: Any) -> list[Any]:
    content = node.get("content") if isinstance(node, dict) else None
    if isinstance(content, list):
        return content
    if isinstance(content, dict | str):
        return [content]
    return []


def _attrs(node: dict[str, Any]) -> dict[str, Any]:
    attrs = node.get("attrs")
    return attrs if isinstance(attrs, dict) else {}


def _cell_content(cell: Any) -> list[Any]:
    if isinstance(cell, dict) and cell.get("type") in ("tableCell", "tableHeader"):
        return _content(cell)
    return [cell]


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _marked(text: str, marks: Any) -> str:
    if not text or not isinstance(marks, list):
        return text
    kinds = {mark.get("type"): _attrs(mark) for mark in marks if isinstance(mark, dict)}
    # Markdown emphasis may not start or end with whitespace, so the markers wrap only the core.
    core = text.strip()
    if not core:
        return text
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    if "code" in kinds:
        fence = "`" * (_longest_run(core, "`") + 1)
        pad = " " if core.startswith("`") or core.endswith("`") else ""
        core = f"{fence}{pad}{core}{pad}{fence}"
    if "em" in kinds:
        core = f"*{core}*"
    if "strong" in kinds:
        core = f"**{core}**"
    if "strike" in kinds:
        core = f"~~{core}~~"
    href = kinds.get("link", {}).get("href")
    if isinstance(href, str) and href:
        core = f"[{core}]({href})"
    return lead + core + trail


def _code_text(content: list[Any]) -> str:
    """A code block's text exactly as written (its children should be unmarked text nodes)."""
    parts = []
    for node in content:
        if isinstance(node, dict) and node.get("type") == "text":
            parts.append(_scalar_text(node.get("text", "")))
        elif isinstance(node, dict) and node.get("type") == "hardBreak":
            parts.append("\n")
        else:
            parts.append(_plain_text(node))
    return "".join(parts)


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(re.escape(char) + "+", text)
    return max((len(run) for run in runs), default=0)


def _fenced(code: str, language: Any) -> str:
    fence = "`" * max(3, _longest_run(code, "`") + 1)
    lang = language if isinstance(language, str) and re.fullmatch(r"[\w+#.-]{1,40}", language) else ""
    return f"{fence}{lang}\n{code}\n{fence}"


def _prefix_lines(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else prefix.rstrip() for line in text.split("\n"))


def _hang(marker: str, body: str) -> str:
    """A list item: the marker on the first line, continuation lines indented under its text."""
    indent = " " * len(marker)
    lines = body.split("\n")
    return "\n".join([marker + lines[0]] + [indent + line if line else "" for line in lines[1:]])


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _card(attrs: dict[str, Any]) -> str:
    url = attrs.get("url")
    if isinstance(url, str) and url:
        return f"<{url}>"
    data = attrs.get("data")
    if isinstance(data, dict):
        return str(data.get("url") or data.get("name") or "[link]")
    return "[link]"


def _media(attrs: dict[str, Any]) -> str:
    alt = attrs.get("alt")
    return f"[attachment: {alt}]" if isinstance(alt, str) and alt else "[attachment]"


def _date(timestamp: Any) -> str:
    try:
        return datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC).date().isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return _scalar_text(timestamp)


_SEPARATOR = object()
_SEPARATED = frozenset({"paragraph", "heading", "listItem", "tableCell", "tableHeader", "codeBlock"})


def _walk_text(root: Any, limit: int) -> Iterator[str]:
    """Every text-bearing value under `root`, depth first, without recursion and visiting each node once.

    The fallback for too-deep or too-large documents: iterative, so nesting depth cannot overflow the
    stack, and a visited set, so a structure that contains itself still terminates.
    """
    stack: list[Any] = [root]
    seen: set[int] = set()
    produced = 0
    last = " "
    while stack and produced < limit:
        node = stack.pop()
        if node is _SEPARATOR:
            # Blocks are separated by one space, not one per nesting level.
            if not last[-1:].isspace():
                last = " "
                yield last
            continue
        if isinstance(node, str):
            if node:
                produced += len(node)
                last = node
                yield node
            continue
        if not isinstance(node, dict | list) or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if node.get("type") in _SEPARATED:
            stack.append(_SEPARATOR)
        stack.extend(reversed(_content(node)))
        attrs = _attrs(node)
        own = node.get("text") if isinstance(node.get("text"), str) else None
        own = own or next(
            (attrs[k] for k in ("text", "shortName", "url", "title") if _nonempty(attrs, k)), None
        )
        if own:
            stack.append(own)


def _nonempty(attrs: dict[str, Any], key: str) -> bool:
    return isinstance(attrs.get(key), str) and bool(attrs[key])


def _plain_text(node: Any, limit: int = DEFAULT_MAX_CHARS * 4) -> str:
    return "".join(_walk_text(node, limit)).strip()
