"""Review quality figures an operator can run against GitLab (README, "The finding ledger").

    python -m quality report --project group/app --since 30d            # a table
    python -m quality report --project group/app --project 12 --json    # JSON
    python -m quality ledger --project group/app --mr 42                # one MR's ledger, JSON

Where the figures come from: the finding ledgers the reviews keep, signed, in each MR's summary
note (docs/adr/0023-finding-ledger.md), read with the service's own settings (GITLAB_URL,
GITLAB_TOKEN, MARKER_KEY from the environment or `.env`). Nothing else is needed: no Temporal, no
database; an MR the service never reviewed has no ledger and is not counted. "Since" selects the
MRs updated in that window (GitLab's `updated_after`). Read-only: it writes nothing anywhere.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.ledger import Ledger
from contracts.settings import Settings, get_settings
from core import ledger_store, markers, quality
from core.review_memory import read_memory

_SINCE = re.compile(r"^(\d+)([dhw])$")


def since(value: str) -> datetime:
    """`30d`, `12h`, `2w`, or an ISO date/time: the start of the window."""
    if match := _SINCE.match(value.strip()):
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount), "w": timedelta(weeks=amount)}[
            unit
        ]
        return datetime.now(UTC) - delta
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a window like 30d, 12h, 2w or an ISO date"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class LedgerReader:
    """Reads the ledgers of a project's MRs from GitLab."""

    def __init__(self, settings: Settings) -> None:
        from activities.gitlab_api import gitlab_client  # python-gitlab only when a command runs

        secret = settings.marker_key.get_secret_value() if settings.marker_key else ""
        token = settings.gitlab_token.get_secret_value() if settings.gitlab_token else ""
        keys = markers.keys_from(secret, token)
        if not keys:
            raise SystemExit("GITLAB_TOKEN (and MARKER_KEY, if the service sets it) must be configured")
        markers.use_keys(keys)
        self.gl = gitlab_client(settings)
        self.gl.auth()
        assert self.gl.user is not None
        self.agent_id = self.gl.user.id

    def ledger(self, mr: Any) -> Ledger | None:
        discussions = [d.attributes for d in mr.discussions.list(get_all=True)]
        memory = read_memory(discussions, self.agent_id, "")
        return ledger_store.load(memory.summary_body, int(mr.project_id), int(mr.iid))

    def project_ledgers(self, project_ref: str, start: datetime) -> Iterator[quality.MRLedger]:
        project = self.gl.projects.get(int(project_ref) if project_ref.isdigit() else project_ref)
        after = start.astimezone(UTC).isoformat().replace("+00:00", "Z")
        for mr in project.mergerequests.list(state="all", updated_after=after, iterator=True):
            if (found := self.ledger(mr)) is not None:
                yield quality.MRLedger(project.path_with_namespace, int(mr.iid), mr.state == "merged", found)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quality", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="quality figures per project, severity and category")
    report.add_argument("--project", action="append", required=True, help="project path or ID (repeatable)")
    report.add_argument(
        "--since", type=since, default="30d", help="MRs updated since: 30d, 12h, 2w or an ISO date"
    )
    report.add_argument("--json", action="store_true", help="JSON instead of a table")
    show = commands.add_parser("ledger", help="one MR's finding ledger as JSON")
    show.add_argument("--project", required=True)
    show.add_argument("--mr", type=int, required=True)
    args = parser.parse_args(argv)

    reader = LedgerReader(get_settings())
    if args.command == "ledger":
        project = reader.gl.projects.get(int(args.project) if args.project.isdigit() else args.project)
        found = reader.ledger(project.mergerequests.get(args.mr))
        if found is None:
            print(
                f"no finding ledger on !{args.mr} (never reviewed, or reviewed before the ledger)",
                file=sys.stderr,
            )
            return 1
        print(found.model_dump_json(indent=2))
        return 0
    ledgers = [item for p in args.project for item in reader.project_ledgers(p, args.since)]
    figures = quality.report(ledgers)
    print(json.dumps(figures, indent=2) if args.json else quality.table(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
