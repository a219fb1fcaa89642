"""The `jira` client the activities use, configured so Temporal owns every retry, and the Jira
reads ImplementIssue needs (its writes go through `jira_writes.py`).

jira's ResilientSession retries 429/5xx itself (sleeping inside the activity, invisible in the UI,
lost on a crash, and re-sending writes whose reply was lost): `max_retries=0` switches that off,
the shared `requests` response hook turns 429/5xx into `TransientHTTPError` for the retry
policies, and an adapter refuses a POST/PUT/DELETE sent from outside the write door.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from jira import JIRA

from activities.http_errors import PermanentError, raise_transient
from activities.write_door import WriteOutsideDoor, inside_door
from contracts.settings import JiraProjectMapping, Settings
from core.adf import adf_to_markdown

FAILED_LABEL = "copilot-agent-failed"
MAX_DESCRIPTION_CHARS = 20_000
_V3 = "{server}/rest/{rest_path}/3/{path}"


def jira_client(settings: Settings) -> JIRA:
    if not settings.jira_url or settings.jira_api_token is None:
        raise PermanentError("JIRA_URL / JIRA_API_TOKEN are not configured", kind="ConfigurationError")
    token = settings.jira_api_token.get_secret_value()
    auth: dict[str, Any] = (
        {"basic_auth": (settings.jira_email, token)} if settings.jira_email else {"token_auth": token}
    )
    client = JIRA(
        server=settings.jira_url,
        max_retries=0,
        get_server_info=False,
        timeout=30,
        options={"check_update": False},
        **auth,
    )
    client._session.hooks["response"].append(raise_transient)
    guard = _WritesThroughTheDoor()
    client._session.mount("http://", guard)
    client._session.mount("https://", guard)
    return client


class _WritesThroughTheDoor(requests.adapters.HTTPAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if (request.method or "GET").upper() not in ("GET", "HEAD", "OPTIONS") and not inside_door():
            path = requests.utils.urlparse(request.url).path
            raise WriteOutsideDoor(f"Jira {request.method} {path} outside activities/jira_writes.py")
        return super().send(request, *args, **kwargs)


# --- status names --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statuses:
    trigger: str
    in_progress: str
    in_review: str
    failed: str  # "" = back to the trigger status, labelled


def statuses(settings: Settings, mapping: JiraProjectMapping) -> Statuses:
    """Per-project names (JIRA_PROJECT_MAP) override the global ones."""
    return Statuses(
        trigger=mapping.trigger_status or settings.jira_trigger_status,
        in_progress=mapping.in_progress_status or settings.jira_in_progress_status,
        in_review=mapping.in_review_status or settings.jira_in_review_status,
        failed=mapping.failed_status or settings.jira_failed_status,
    )


def mapping_for(settings: Settings, issue_key: str) -> tuple[str, JiraProjectMapping]:
    project = issue_key.rsplit("-", 1)[0].upper()
    found = settings.jira_project_map.get(project)
    if found is None:
        mapped = ", ".join(sorted(settings.jira_project_map)) or "none"
        raise PermanentError(
            f"Jira project {project} is not in JIRA_PROJECT_MAP (mapped: {mapped})", kind="NotMapped"
        )
    return project, found


# --- reading --------------------------------------------------------------------------------------------
def read_issue(client: JIRA, key: str) -> dict[str, Any]:
    """The issue's fields through REST v3, whose description is ADF: converted, never dropped."""
    raw = client._get_json(
        f"issue/{key}", params={"fields": "summary,description,status,labels,project"}, base=_V3
    )
    fields = raw.get("fields") or {}
    return {
        "key": raw.get("key", key),
        "summary": str(fields.get("summary") or "")[:1000],
        "description": adf_to_markdown(fields.get("description"), MAX_DESCRIPTION_CHARS),
        "status": str((fields.get("status") or {}).get("name") or ""),
        "labels": [str(label) for label in fields.get("labels") or []],
    }
