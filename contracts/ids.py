"""Workflow IDs: the deduplication keys of the whole service.

A delivery, a redelivery, a poller hit and a manual start of the same piece of work all compute the
same ID, and Temporal refuses a second execution under it (see `api/` and `workflows/` for the
reuse and conflict policies chosen per kind).
"""

from __future__ import annotations

import re

_KEY = re.compile(r"^[A-Z][A-Z0-9_]*-\d+$")


def review_id(project_id: int, mr_iid: int, head_sha: str, *, once: bool = False) -> str:
    """Per head SHA (every push is reviewed); `once` (GITLAB_REVIEW_ON_PUSH=false): per MR."""
    return f"review:{project_id}:{mr_iid}:{'once' if once else head_sha}"


def discussion_id(project_id: int, note_id: int) -> str:
    return f"discussion:{project_id}:{note_id}"


def implement_id(issue_key: str) -> str:
    return f"implement:{issue_key.upper()}"


def is_jira_key(value: str) -> bool:
    return bool(_KEY.match(value))


JIRA_POLL_SCHEDULE_ID = "poll-jira"
GITLAB_POLL_SCHEDULE_ID = "poll-gitlab"
