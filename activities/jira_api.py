"""The `jira` client the activities use, configured so Temporal owns every retry, and the Jira
reads ImplementIssue needs (its writes go through `jira_writes.py`).

jira's ResilientSession retries 429/5xx itself (sleeping inside the activity, invisible in the UI,
lost on a crash, and re-sending writes whose reply was lost): `max_retries=0` switches that off,
the shared `requests` response hook turns 429/5xx into `TransientHTTPError` for the retry
policies, and an adapter refuses a POST/PUT/DELETE sent from outside the write door.

Cloud and Server/Data Center: Cloud is read through REST v3 (ADF), Server/DC through REST v2 (wiki
markup; it has no v3), both converted to markdown. Which one is `JIRA_DEPLOYMENT`, or with "auto" the
`deploymentType` of serverInfo (read when a client is built; serverInfo answers anonymously).
The client's `deploymentType` is set either way, so the `jira` library picks its Cloud or Server
variants (e.g. `search/jql` vs `search`, accountId vs name) for what it does itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from jira import JIRA

from activities.http_errors import PermanentError, raise_transient
from activities.write_door import WriteOutsideDoor, inside_door
from contracts.settings import JiraDeployment, JiraProjectMapping, Settings
from core.adf import adf_to_markdown
from core.jira_markup import wiki_to_markdown

FAILED_LABEL = "copilot-agent-failed"
MAX_DESCRIPTION_CHARS = 20_000
_V3 = "{server}/rest/{rest_path}/3/{path}"
_V2 = "{server}/rest/{rest_path}/2/{path}"


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
    client.deploymentType, client._version = _deployment(client, settings)
    return client


def _deployment(client: JIRA, settings: Settings) -> tuple[str, tuple[int, ...]]:
    if settings.jira_deployment is JiraDeployment.CLOUD:
        return "Cloud", (1001, 0, 0)
    if settings.jira_deployment is JiraDeployment.DATACENTER:
        return "Server", (9, 0, 0)
    # Not cached: one small GET per client (an activity's worth of calls) follows a Jira that is
    # migrated or replaced behind the same URL; JIRA_DEPLOYMENT set skips it.
    info = client.server_info()
    kind = "Cloud" if str(info.get("deploymentType", "")).lower() == "cloud" else "Server"
    numbers = info.get("versionNumbers") or [0, 0, 0]
    return kind, tuple(int(n) for n in numbers)


def is_cloud(client: JIRA) -> bool:
    return client.deploymentType == "Cloud"


def api_base(client: JIRA) -> str:
    """The REST base of the flavour's native rich text: v3 (ADF) on Cloud, v2 (wiki) on Server/DC."""
    return _V3 if is_cloud(client) else _V2


def to_markdown(client: JIRA, body: Any, max_chars: int = MAX_DESCRIPTION_CHARS) -> str:
    if is_cloud(client) or not isinstance(body, str):
        return adf_to_markdown(body, max_chars)
    return adf_to_markdown(wiki_to_markdown(body), max_chars)  # the cap (with its marker) of adf.py


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
    found = settings.project_map().get(project)
    if found is None:
        mapped = ", ".join(sorted(settings.project_map())) or "none"
        raise PermanentError(
            f"Jira project {project} is not in JIRA_PROJECT_MAP (mapped: {mapped})", kind="NotMapped"
        )
    return project, found


# --- reading --------------------------------------------------------------------------------------------
def read_issue(client: JIRA, key: str) -> dict[str, Any]:
    """The issue's fields in the flavour's native format (v3 ADF / v2 wiki): converted, never dropped."""
    raw = client._get_json(
        f"issue/{key}", params={"fields": "summary,description,status,labels,project"}, base=api_base(client)
    )
    fields = raw.get("fields") or {}
    return {
        "key": raw.get("key", key),
        "summary": str(fields.get("summary") or "")[:1000],
        "description": to_markdown(client, fields.get("description")),
        "status": str((fields.get("status") or {}).get("name") or ""),
        "labels": [str(label) for label in fields.get("labels") or []],
    }


@dataclass(frozen=True)
class IssueComment:
    id: str
    author: str  # accountId on Cloud, user name on Server/DC
    author_name: str
    created: str
    text: str  # markdown


def user_id(who: dict[str, Any] | None) -> str:
    who = who or {}
    return str(who.get("accountId") or who.get("name") or "")


def read_comments(client: JIRA, key: str, max_chars: int = 20_000) -> list[IssueComment]:
    """Every comment of the issue, oldest first, as markdown (native format of the flavour)."""
    found: list[IssueComment] = []
    start = 0
    while True:
        page = client._get_json(
            f"issue/{key}/comment", params={"startAt": start, "maxResults": 100}, base=api_base(client)
        )
        items = page.get("comments") or []
        for item in items:
            author = item.get("author") or {}
            found.append(
                IssueComment(
                    id=str(item.get("id")),
                    author=user_id(author),
                    author_name=str(author.get("displayName") or user_id(author)),
                    created=str(item.get("created") or ""),
                    text=to_markdown(client, item.get("body"), max_chars),
                )
            )
        start += len(items)
        if not items or start >= int(page.get("total") or 0) or len(found) >= 5000:
            return found
