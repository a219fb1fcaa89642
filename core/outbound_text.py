"""The one filter in front of everything the service writes to GitLab and Jira. Pure.

GitLab runs quick actions (`/approve`, `/ready`, `/label`, `/assign_reviewer`, `/close`,
`/target_branch`, ...) found at the start of a line in notes, discussion replies, note edits and
MR descriptions written through the API, as the writing user: the agent's bot account. The text we
post carries untrusted parts (model findings, summaries, replies, MR descriptions, path names from
a fork), so `gitlab_text` is applied to the text of every GitLab write, whatever built it, inside the one
write door (activities/gitlab_writes.py `compose`):

- CR and CRLF become LF (GitLab deletes CRs before it scans, so a lone CR would otherwise be
  invisible here and join two lines there; as a line break it is at least visible and filtered);
- every line that starts with `/` gets a backslash in front (`\\/approve`, which Markdown renders as
  `/approve` and no GitLab version reads as a command), except inside fenced code blocks, so code
  and one-click suggestions keep their `/`. GitLab's extractor (Gitlab::QuickActions::Extractor)
  also skips inline code, HTML blocks and `>>>` quotes, but older versions did not, and exactly
  where a span ends depends on the whole text; a line stays untouched only when it is inside a
  fence both as GitLab scans today (all exclusions) and as a fences-only scan sees it, and the
  scan is repeated until neither finds a command (see `neutralise_quick_actions`);
- no `<!-- gitlab-copilot-agent:` in the text stays a live HTML comment (defused to `&lt;!-- ...`):
  the write door (activities/gitlab_writes.py) appends the service's own marker after the filtered
  text with `gitlab_body`, so only that one is ever the note's trailing marker (markers are also
  authenticated, see core/markers.py).

`code_span` renders names that come from a repository (paths, branches) as one inline code span
with control and invisible characters escaped, so a file named `logo\\n/approve\\n.png` is shown as
`` `logo\\n/approve\\n.png` `` on one line. `jira_text` does the same job for Jira comments, whose
hidden tag (activities/jira_api.py) must not be forgeable either.
"""

from __future__ import annotations

import re

from core.markers import PREFIX
from core.sanitize import strip_unsafe, truncate

MARKER_OPEN = f"<!-- {PREFIX}:"
JIRA_TAG_OPEN = f"[{PREFIX}:"
MAX_MODEL_TEXT = 10_000

_FLAGS = re.DOTALL | re.MULTILINE | re.VERBOSE
_CODE = r"(?P<code> ^```.+?\n```$ )"
_OTHER_EXCLUSIONS = r"""
  | (?P<inline_code> `\n*.+?\n*` )
  | (?P<html> ^<[^>]+?>\n.+?\n</[^>]+?>$ )
  | (?P<quote> ^>>>.+?\n>>>$ )
"""
# Any line starting with "/" counts as a command here: a superset of every name GitLab knows, so a
# scan that finds none here finds none in GitLab (its scan then takes the same steps as this one).
_ANY_COMMAND = r" | (?P<cmd> ^/[^\n]* )"
_SCANS = (
    re.compile(_CODE + _OTHER_EXCLUSIONS + _ANY_COMMAND, _FLAGS),  # GitLab's exclusions today
    re.compile(_CODE + _ANY_COMMAND, _FLAGS),  # fences only, as every GitLab version skips them
)
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}
_BACKTICKS = re.compile(r"`+")


def _command_lines(text: str) -> set[int]:
    """Offsets of the lines either scan reads as a quick action."""
    found: set[int] = set()
    for scan in _SCANS:
        found |= {m.start("cmd") for m in scan.finditer(text) if m.group("cmd") is not None}
    return found


def neutralise_quick_actions(text: str) -> tuple[str, int]:
    """`text` with no line GitLab could run as a quick action, and how many lines were changed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    changed = 0
    while starts := _command_lines(text):
        # Prefixing only adds a backslash at a line start: no exclusion begins or ends with one,
        # so each round only removes commands; it ends after at most one round per line.
        for offset in sorted(starts, reverse=True):
            text = text[:offset] + "\\" + text[offset:]
        changed += len(starts)
    return text, changed


def gitlab_text(text: str) -> str:
    """Text for a GitLab note, reply, note edit or MR description, safe to post as the bot: no line
    GitLab runs as a quick action, no live marker (the service's own is appended after it)."""
    neutral, _ = neutralise_quick_actions(text)
    return neutral.replace(MARKER_OPEN, "&lt;" + MARKER_OPEN[1:])


def gitlab_body(text: str, marker: str) -> str:
    """The body GitLab stores: the filtered text, then the service's marker on its own last line."""
    if not (marker.startswith(MARKER_OPEN) and marker.endswith("-->") and "\n" not in marker):
        raise ValueError("not a marker of this service")
    return f"{gitlab_text(text).rstrip()}\n\n{marker}"


def model_text(text: str, limit: int = MAX_MODEL_TEXT) -> str:
    """Text the model wrote, for embedding in a body: no hidden characters, no HTML comments."""
    return truncate(strip_unsafe(text).replace("<!--", "&lt;!--"), limit).strip()


def one_line(text: str, limit: int = 300) -> str:
    """Model text for a place that must stay one line (a finding's title)."""
    return " ".join(model_text(text, max(limit, 40)).split())[:limit]


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if strip_unsafe(char) == char:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def code_span(name: str, limit: int = 300) -> str:
    """A repository name (path, branch) as one inline code span: control, bidi and invisible
    characters escaped (`\\n`, `\\x1b`, `\\u202e`; backslash as `\\\\`), never a line break."""
    escaped = "".join(_escape(c) for c in name)
    if len(escaped) > limit:
        escaped = escaped[: limit - 1] + "…"
    longest = max((len(run) for run in _BACKTICKS.findall(escaped)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if escaped.startswith("`") or escaped.endswith("`") or not escaped.strip() else ""
    return f"{fence}{pad}{escaped}{pad}{fence}"


def jira_text(text: str) -> str:
    """A Jira comment's text before the service appends its tag: no hidden characters, no tag."""
    return strip_unsafe(text).replace(JIRA_TAG_OPEN, "(" + JIRA_TAG_OPEN[1:])
