"""GitLab's quick-action extractor, ported, so the stand-in sees every `/approve` a write would run.

GitLab (`Gitlab::QuickActions::Extractor`) runs the commands it finds in notes, discussion replies,
note edits and MR descriptions written through the API, as the writing user. Its rule, in one
regex (Ruby `/mix`: `.` matches newlines, `^`/`$` are line boundaries, case-insensitive):

- carriage returns are deleted first;
- excluded from the scan, left to right: fenced code ```` ^```.+?\\n```$ ````, inline code
  `` `\\n*.+?\\n*` `` (which may span lines), HTML blocks `^<tag>\\n.+?\\n</tag>$` whose first line is a
  lone tag, and `^>>>.+?\\n>>>$` quote blocks;
- a command is `^/<name>` at the very start of a line (no indentation), then end of line or a space
  and its argument up to the end of the line.

The real extractor only knows the commands registered for the noteable; the list below is GitLab's
merge request set (with aliases) as of 17.x, broad on purpose: a stand-in that misses a command
would let a test pass that real GitLab fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COMMAND_NAMES = (
    "add_contacts approve assign assign_me assign_reviewer award blocked_by blocks board_move cc "
    "checkin_reminder clone close confidential copy_metadata create_merge_request done draft due "
    "duplicate epic estimate estimate_time health_status iteration label labels lock merge milestone "
    "move page promote q react ready reassign reassign_reviewer rebase relabel relate remove_contacts "
    "remove_due_date remove_estimate remove_label remove_milestone remove_parent remove_reviewer "
    "remove_time_spent remove_time_estimate request_review request_changes reopen reviewer set_parent "
    "severity shrug spend spent status submit_review subscribe summarize_diff tableflip target_branch "
    "timeline title todo unapprove unassign unassign_reviewer unlabel unlink unlock unrelate "
    "unsubscribe weight wip"
).split()

_EXCLUSIONS = r"""
    (?P<code> ^```.+?\n```$ )
  | (?P<inline_code> `\n*.+?\n*` )
  | (?P<html> ^<[^>]+?>\n.+?\n</[^>]+?>$ )
  | (?P<quote> ^>>>.+?\n>>>$ )
"""
# Longest names first: Ruby's Regexp.union keeps GitLab's order, and backtracking makes the order
# irrelevant for what matches as a command; sorting only keeps the capture the whole name.
_NAMES = "|".join(sorted(map(re.escape, COMMAND_NAMES), key=len, reverse=True))
_COMMAND = rf"""
  | (?: ^/(?P<cmd>{_NAMES}) (?: [ ](?P<arg>[^\n]*) )? (?: \s*\n | $ ) )
"""
EXTRACTOR = re.compile(_EXCLUSIONS + _COMMAND, re.DOTALL | re.MULTILINE | re.IGNORECASE | re.VERBOSE)


@dataclass(frozen=True)
class QuickAction:
    command: str
    argument: str


def extract(text: str) -> list[QuickAction]:
    """The quick actions GitLab would run for `text`, in order."""
    found = []
    for match in EXTRACTOR.finditer((text or "").replace("\r", "")):
        if match.group("cmd"):
            found.append(QuickAction(match.group("cmd").lower(), (match.group("arg") or "").strip()))
    return found


@dataclass(frozen=True)
class QuickActionRecord:
    """A quick action a write through the API would have made GitLab run, as that writer."""

    where: str  # "note", "discussion", "reply", "note_edit", "mr_description"
    project: str
    mr_iid: int
    user: str
    command: str
    argument: str
