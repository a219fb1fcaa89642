"""The `jira` client the activities use, configured so Temporal owns every retry, and the few Jira
operations ImplementIssue needs, each safe to repeat.

jira's ResilientSession retries 429/5xx itself (sleeping inside the activity, invisible in the UI,
lost on a crash): `max_retries=0` switches that off, and the shared `requests` response hook turns
429/5xx into `TransientHTTPError` for the retry policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jira import JIRA

from activities.http_errors import PermanentError, raise_transient
from contracts.settings import JiraProjectMapping, Settings
from core.adf import adf_to_markdown

FAILED_LABEL = "copilot-agent-failed"
COMMENT_TAG = "gitlab-copilot-agent"
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
    return client


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


# --- writing, each idempotent ---------------------------------------------------------------------------
def move_to(client: JIRA, key: str, status: str) -> bool:
    """Move the issue to `status` by the transition whose target (`to.name`) is that status.

    Transition names are free text and differ between workflows ("Start work", "Begin"); the target
    status is what we mean. False when the issue is there already (a retry after success)."""
    current = str(client.issue(key, fields="status").fields.status.name)
    if current.casefold() == status.casefold():
        return False
    transitions = client.transitions(key)
    match = next(
        (t for t in transitions if str((t.get("to") or {}).get("name", "")).casefold() == status.casefold()),
        None,
    )
    if match is None:
        available = "; ".join(
            f"'{t.get('name')}' -> '{(t.get('to') or {}).get('name')}'" for t in transitions
        )
        raise PermanentError(
            f"{key}: no transition from '{current}' leads to status '{status}' "
            f"(available: {available or 'none'})",
            kind="JiraTransitionMissing",
        )
    client.transition_issue(key, str(match["id"]))
    return True


def add_label(client: JIRA, key: str, label: str) -> None:
    client._session.put(
        client._get_url(f"issue/{key}"), json={"update": {"labels": [{"add": label}]}}
    )  # Jira ignores adding a label that is there already


def comment_tag(kind: str, run_id: str) -> str:
    return f"[{COMMENT_TAG}:{kind}:{run_id}]"


def comment_once(client: JIRA, key: str, text: str, *, kind: str, run_id: str) -> bool:
    """Add `text` unless this run's comment of this kind is there already (found by its tag, in
    comments by our own account only). True when a comment was added."""
    tag = comment_tag(kind, run_id)
    myself = client.myself()
    me = myself.get("accountId") or myself.get("name")  # Cloud has account IDs, Server/DC names
    for comment in client.comments(key):
        author = getattr(comment, "author", None)
        who = getattr(author, "accountId", None) or getattr(author, "name", None)
        if tag in str(comment.body) and who == me:
            return False
    client.add_comment(key, f"{text}\n\n{tag}")
    return True
