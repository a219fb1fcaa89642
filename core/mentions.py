"""Does a note mention the agent? `@<username>` as a whole word, outside code.

GitLab usernames may contain letters, digits, `_`, `-` and `.`, and are matched case-insensitively,
so `@copilot-agent-x` (a longer name), `a@copilot-agent.com` (an e-mail) and `@copilot-agent.dev`
are not mentions, while "thanks @copilot-agent." (sentence end) is. Code spans and fenced blocks are
skipped: pasting a log that contains the name is not a request.
"""

from __future__ import annotations

import re

_FENCED = re.compile(r"^(?P<fence>`{3,}|~{3,}).*?^(?P=fence)[ \t]*$", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.DOTALL)
MAX_SCAN_CHARS = 100_000


def without_code(text: str) -> str:
    return _INLINE_CODE.sub(" ", _FENCED.sub(" ", text))


def mentions(text: str, username: str) -> bool:
    """True when `text` mentions `@username` as a whole word outside code."""
    if not username or not isinstance(text, str):
        return False
    pattern = re.compile(
        # not inside an e-mail or another token before the @ ...
        r"(?<![\w.+@/-])@"
        + re.escape(username)
        # ... and not continued by more username characters (a "." only ends it before a non-word)
        + r"(?![\w-])(?!\.[\w-])",
        re.IGNORECASE,
    )
    return bool(pattern.search(without_code(text[:MAX_SCAN_CHARS])))
