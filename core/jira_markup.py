"""Jira's two rich-text formats, next to the ADF reader in `core/adf.py`:

- `wiki_to_markdown`: Jira Server/Data Center (REST v2) stores descriptions and comments as wiki
  markup (`h2. Goal`, `* item`, `{code:python}...{code}`, `[label|url]`); the prompt, the plan and
  the acceptance criteria read markdown, so it is converted like ADF is on Cloud. No text is lost:
  what is not a known construct stays as written.
- `markdown_to_wiki` / `markdown_to_adf`: the service's own comments (plan, reminders, MR link) are
  written as a small markdown subset (headings, `-` lists, fenced code, `inline code`, links) and sent
  in the flavour's format, so they read as formatted text on both deployments.
"""

from __future__ import annotations

import re
from typing import Any

_WIKI_HEADING = re.compile(r"^h([1-6])\.\s+(.*)$")
_WIKI_LIST = re.compile(r"^([*#-]+)\s+(.*)$")
_WIKI_CODE_OPEN = re.compile(r"^\{(code|noformat)(?::([^}|]*))?[^}]*\}(.*)$")
_WIKI_LINK = re.compile(r"\[([^\]|\n]+)\|([^\]\s]+)\]")
_WIKI_MONO = re.compile(r"\{\{(.+?)\}\}")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_MD_LIST = re.compile(r"^(\s*)[-*]\s+(.*)$")
_MD_TOKEN = re.compile(r"`([^`\n]+)`|\[([^\]\n]+)\]\((https?://[^)\s]+)\)")


def wiki_to_markdown(text: str | None) -> str:
    if not text:
        return ""
    out: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        opened = _WIKI_CODE_OPEN.match(line.strip())
        if opened:
            kind, language, rest = opened.group(1), (opened.group(2) or "").strip(), opened.group(3)
            body: list[str] = [rest] if rest.strip() else []
            closing = "{" + kind + "}"
            while index < len(lines) and not lines[index].strip().startswith(closing):
                body.append(lines[index])
                index += 1
            index += 1  # the closing tag (or the end of the text: nothing is dropped either way)
            out.extend([f"```{language if kind == 'code' else ''}", *body, "```"])
            continue
        if heading := _WIKI_HEADING.match(line):
            out.append("#" * int(heading.group(1)) + " " + _wiki_inline(heading.group(2)))
        elif (listed := _WIKI_LIST.match(line)) and not line.startswith("----"):
            marks = listed.group(1)
            bullet = "1." if marks.endswith("#") else "-"
            out.append("  " * (len(marks) - 1) + f"{bullet} " + _wiki_inline(listed.group(2)))
        elif line.strip().startswith("bq. "):
            out.append("> " + _wiki_inline(line.strip()[4:]))
        else:
            out.append(_wiki_inline(line))
    return "\n".join(out).strip("\n")


def _wiki_inline(text: str) -> str:
    text = _WIKI_MONO.sub(lambda m: f"`{m.group(1)}`", text)
    return _WIKI_LINK.sub(lambda m: f"[{m.group(1)}]({m.group(2)})", text)


def markdown_to_wiki(text: str) -> str:
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if line.startswith("```"):
            if fence is None:
                fence = line[3:].strip()
                out.append("{code:" + fence + "}" if fence else "{code}")
            else:
                fence = None
                out.append("{code}")
        elif fence is not None:
            out.append(line)
        elif heading := _MD_HEADING.match(line):
            out.append(f"h{len(heading.group(1))}. " + _md_inline_wiki(heading.group(2)))
        elif listed := _MD_LIST.match(line):
            out.append("*" * (len(listed.group(1)) // 2 + 1) + " " + _md_inline_wiki(listed.group(2)))
        else:
            out.append(_md_inline_wiki(line))
    if fence is not None:
        out.append("{code}")
    return "\n".join(out)


def _md_inline_wiki(text: str) -> str:
    def swap(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return "{{" + match.group(1) + "}}"
        return f"[{match.group(2)}|{match.group(3)}]"

    return _MD_TOKEN.sub(swap, text)


def markdown_to_adf(text: str) -> dict[str, Any]:
    """An ADF document of the markdown subset the service writes (see the module docstring)."""
    blocks: list[dict[str, Any]] = []
    paragraph: list[str] = []
    bullets: list[dict[str, Any]] = []
    lines = text.split("\n")

    def flush() -> None:
        if paragraph:
            content: list[dict[str, Any]] = []
            for number, line in enumerate(paragraph):
                if number:
                    content.append({"type": "hardBreak"})
                content.extend(_adf_inline(line))
            blocks.append({"type": "paragraph", "content": content})
            paragraph.clear()
        if bullets:
            blocks.append({"type": "bulletList", "content": list(bullets)})
            bullets.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith("```"):
            flush()
            language, code = line[3:].strip(), []
            while index < len(lines) and not lines[index].startswith("```"):
                code.append(lines[index])
                index += 1
            index += 1
            node: dict[str, Any] = {
                "type": "codeBlock",
                "content": [{"type": "text", "text": "\n".join(code)}],
            }
            if language:
                node["attrs"] = {"language": language}
            if not code:
                node["content"] = []
            blocks.append(node)
        elif heading := _MD_HEADING.match(line):
            flush()
            level = len(heading.group(1))
            blocks.append(
                {"type": "heading", "attrs": {"level": level}, "content": _adf_inline(heading.group(2))}
            )
        elif listed := _MD_LIST.match(line):
            if paragraph:
                bullets_kept = list(bullets)
                bullets.clear()
                flush()
                bullets.extend(bullets_kept)
            item = {"type": "paragraph", "content": _adf_inline(listed.group(2))}
            bullets.append({"type": "listItem", "content": [item]})
        elif not line.strip():
            flush()
        else:
            if bullets:
                flush()
            paragraph.append(line)
    flush()
    return {"type": "doc", "version": 1, "content": blocks}


def _adf_inline(text: str) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    position = 0
    for match in _MD_TOKEN.finditer(text):
        if match.start() > position:
            nodes.append({"type": "text", "text": text[position : match.start()]})
        if match.group(1) is not None:
            nodes.append({"type": "text", "text": match.group(1), "marks": [{"type": "code"}]})
        else:
            link = {"type": "link", "attrs": {"href": match.group(3)}}
            nodes.append({"type": "text", "text": match.group(2), "marks": [link]})
        position = match.end()
    if position < len(text):
        nodes.append({"type": "text", "text": text[position:]})
    return nodes
