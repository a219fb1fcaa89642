"""The one door every Jira write goes through: comments, transitions, labels.

Like `gitlab_writes.py`: each write looks for its effect before it is sent (a retried activity) and
again after an ambiguous failure (a reply lost after Jira processed it), and adopts what it finds
instead of sending twice (`write_door.write_once`). A comment takes its text and its tag (the
marker) separately; `jira_api.jira_client` refuses a POST/PUT/DELETE sent from anywhere else.
Comments are written as a small markdown subset and sent as ADF through REST v3 on Cloud, as wiki
markup through REST v2 on Server/Data Center (`core/jira_markup.py`).
"""

from __future__ import annotations

from typing import Any

from jira import JIRA

from activities.http_errors import PermanentError
from activities.jira_api import api_base, is_cloud, read_comments
from activities.write_door import write_once
from core.jira_markup import markdown_to_adf, markdown_to_wiki
from core.outbound_text import jira_text

COMMENT_TAG = "gitlab-copilot-agent"


def comment_tag(kind: str, run_id: str) -> str:
    return f"[{COMMENT_TAG}:{kind}:{run_id}]"


def compose(text: str, tag: str) -> str:
    """The comment Jira stores: the text through the output filter (no forged tag), then the tag."""
    return f"{jira_text(text).rstrip()}\n\n{tag}"


def _me(client: JIRA) -> Any:
    myself = client.myself()
    return myself.get("accountId") or myself.get("name")  # Cloud has account IDs, Server/DC names


def comment(client: JIRA, key: str, text: str, tag: str) -> bool:
    """Add the comment unless one of ours carries `tag` already. True when this call added it."""
    me = _me(client)

    def find() -> bool | None:
        for existing in read_comments(client, key):
            if tag in existing.text and existing.author == me:
                return True
        return None

    if find():
        return False

    def send() -> bool:
        composed = compose(text, tag)
        body: Any = markdown_to_adf(composed) if is_cloud(client) else markdown_to_wiki(composed)
        url = client._get_url(f"issue/{key}/comment", base=api_base(client))
        client._session.post(url, json={"body": body})
        return True

    return write_once(f"comment on {key}", send, find)


def _status(client: JIRA, key: str) -> str:
    return str(client.issue(key, fields="status").fields.status.name)


def transition(client: JIRA, key: str, status: str) -> bool:
    """Move the issue to `status` by the transition whose target (`to.name`) is that status.

    Transition names are free text and differ between workflows ("Start work", "Begin"); the target
    status is what we mean. False when the issue is there already (a retry after success)."""
    current = _status(client, key)
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

    def send() -> bool:
        client.transition_issue(key, str(match["id"]))
        return True

    def find() -> bool | None:
        return True if _status(client, key).casefold() == status.casefold() else None

    return write_once(f"move {key} to {status}", send, find)


def add_label(client: JIRA, key: str, label: str) -> None:
    def labels() -> list[str]:
        return [
            str(v) for v in client._get_json(f"issue/{key}", params={"fields": "labels"})["fields"]["labels"]
        ]

    def send() -> bool:
        # Jira ignores adding a label that is there already.
        client._session.put(client._get_url(f"issue/{key}"), json={"update": {"labels": [{"add": label}]}})
        return True

    write_once(f"label {key}", send, lambda: True if label in labels() else None, check_first=True)
