"""The ledger in the summary note: a folded "Findings" table people read, and the same ledger as a
signed hidden line the next review reads. Pure.

The hidden line is `<!-- gitlab-copilot-agent-ledger v1 <data> <mac> -->`: `data` is the ledger
as zlib-compressed JSON in URL-safe base64 (no `/`, so no line can look like a quick action),
`mac` the service's seal over the project, the MR and `data` (core/markers.py `seal`), so a ledger
that was invented, altered or copied from another MR is ignored (and rebuilt from the threads).
The line is not a marker: the output filter leaves it alone, and model text can never contain it
(`model_text` defuses every `<!--`).
"""

from __future__ import annotations

import base64
import re
import zlib
from collections import Counter

from pydantic import ValidationError

from contracts.ledger import Ledger
from core import markers
from core.outbound_text import code_span, one_line

_LINE = re.compile(
    r"^<!-- " + re.escape(markers.PREFIX) + r"-ledger v1 ([A-Za-z0-9_=-]+) ([0-9a-f]{32}) -->$", re.MULTILINE
)
MAX_DATA = 600_000
_ORDER = ("open", "reopened", "addressed", "verified", "rebutted", "resolved", "closed", "outdated")


def _purpose(project_id: int, mr_iid: int) -> str:
    return f"ledger v1 {project_id}:{mr_iid}"


def dump(ledger: Ledger) -> str:
    raw = zlib.compress(ledger.model_dump_json(exclude_defaults=False).encode(), 9)
    data = base64.urlsafe_b64encode(raw).decode()
    mac = markers.seal(_purpose(ledger.project_id, ledger.mr_iid), data.encode())
    return f"<!-- {markers.PREFIX}-ledger v1 {data} {mac} -->"


def load(summary_body: str, project_id: int, mr_iid: int) -> Ledger | None:
    """The authentic ledger in a summary note of this MR, or None."""
    for match in _LINE.finditer(summary_body or ""):
        data, mac = match.group(1), match.group(2)
        if len(data) > MAX_DATA or not markers.unsealed(_purpose(project_id, mr_iid), data.encode(), mac):
            continue
        try:
            ledger = Ledger.model_validate_json(
                zlib.decompress(base64.urlsafe_b64decode(data), bufsize=1 << 20)
            )
        except (ValueError, ValidationError, zlib.error):
            continue
        if ledger.project_id == project_id and ledger.mr_iid == mr_iid:
            return ledger
    return None


def _cell(text: str, limit: int = 120) -> str:
    return one_line(text, limit).replace("|", "\\|")


def findings_table(ledger: Ledger) -> str:
    """The folded "Findings" section of the summary note."""
    if not ledger.entries:
        return ""
    counts = Counter(e.state for e in ledger.entries)
    tally = ", ".join(f"{counts[s]} {s}" for s in _ORDER if counts[s])
    rows = [
        "| # | State | Severity | Category | Where | Finding | History |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, entry in enumerate(ledger.entries, 1):
        anchor = entry.anchor
        where = code_span(f"{anchor.file}:{anchor.line}", 200) if anchor else "general"
        history = " → ".join(f"{e.state} {e.sha[:8]}".strip() for e in entry.history[-8:])
        rows.append(
            f"| {number} | {entry.state} | {entry.severity} | {entry.category} | {where} | "
            f"{_cell(entry.title)} | {_cell(history, 300)} |"
        )
    extra = (
        f"Repeats not posted: {ledger.repeats_prevented}. Findings held back on lines the new commits "
        f"did not touch: {ledger.held_back}. Reviews: {ledger.reviews}."
    )
    table = "\n".join(rows)
    return f"<details><summary>Findings ({len(ledger.entries)}: {tally})</summary>\n\n{table}\n\n{extra}\n\n</details>"


def with_ledger(summary_text: str, ledger: Ledger) -> str:
    """The summary text with the Findings table and the signed ledger line appended."""
    table = findings_table(ledger)
    return "\n\n".join(part for part in (summary_text.rstrip(), table, dump(ledger)) if part)
