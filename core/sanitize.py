"""Untrusted text (MR titles, descriptions, notes, commit messages, Jira fields) made safe for prompts.

Invisible characters are the usual carriers of prompt injection and "Trojan Source" tricks: bidi
controls reorder what a human reviewer sees, zero-width and tag characters smuggle text no one sees.
They are removed rather than escaped because nothing legitimate in review input depends on them.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(
    "["
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f"  # C0 controls except \t \n (\r is handled as a line ending) and DEL
    "\x80-\x9f"  # C1 controls
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\u200b-\u200d\u2060\ufeff"  # zero-width space/joiners, word joiner, BOM
    "\U000e0000-\U000e007f"  # tag characters
    # Beyond the brief: variation selectors carry hidden bytes ("emoji smuggling") and lone surrogates
    # cannot be encoded to UTF-8 at all, so they would fail later, far from the input that caused them.
    "\ufe00-\ufe0f\U000e0100-\U000e01ef"
    "\ud800-\udfff"
    "]"
)
_TAG = re.compile(r"<(\s*/?\s*)(untrusted)", re.IGNORECASE)
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def strip_unsafe(text: str) -> str:
    """Remove control, bidi, zero-width, tag and variation-selector characters; CRLF and lone CR to LF.

    A lone CR becomes a line break rather than vanishing, so text that used it to overwrite a
    terminal line stays visible. Tab and LF are kept. Raises TypeError for anything but str.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    return _UNSAFE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def truncate(text: str, max_chars: int) -> str:
    """`text` itself when it fits, else its head plus "\\n[truncated N chars]", all within `max_chars`.

    N counts the characters removed, so a reader knows how much is missing. Raises ValueError when
    `max_chars` cannot hold the marker (below 40).
    """
    if max_chars < 40:
        raise ValueError(f"max_chars must be at least 40 to fit the truncation marker, got {max_chars}")
    if len(text) <= max_chars:
        return text
    keep = max_chars
    while True:  # the marker's length depends on N, which depends on how much the marker displaces
        marker = f"\n[truncated {len(text) - keep} chars]"
        if keep + len(marker) <= max_chars:
            return text[:keep] + marker
        keep = max_chars - len(marker)


def untrusted_block(label: str, text: str, max_chars: int) -> str:
    """`text` as clearly delimited untrusted data for a prompt: `<untrusted source="label">…</untrusted>`.

    The text is stripped of unsafe characters, truncated to `max_chars` (with a marker), and any
    `<untrusted` or `</untrusted` inside it is defused to `&lt;…` so it cannot close the block early or
    open a fake one. `label` names our own source, not user input: anything but a short lowercase
    identifier raises ValueError.
    """
    if not _LABEL.match(label):
        raise ValueError(f"untrusted block label must be a short lowercase identifier, got {label!r}")
    body = _TAG.sub(r"&lt;\1\2", truncate(strip_unsafe(text), max_chars))
    return f'<untrusted source="{label}">\n{body}\n</untrusted>'
