"""The pollers' activities: find work in Jira and GitLab and start the same workflows, under the
same IDs, that a webhook or an operator would start, so nothing is ever done twice.

The GitLab poller finds both kinds of MR work a webhook would bring: a new head (ReviewMR) and a note
for the agent, an @mention or a reply in one of its threads (MRDiscussion, filtered as the Note Hook
is: core/poll_notes.py). A note touches its MR's `updated_at`, so the MRs listed since the watermark
are the ones whose discussions can hold new notes.

Starting workflows from an activity (not as child workflows) keeps each run independent of the
poller run that found it: a poll finishes in seconds, an implementation may take many minutes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import gitlab
from jira import JIRA, JIRAError
from temporalio import activity
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.gitlab_api import client_user, gitlab_client, project_client
from activities.http_errors import activity_errors
from activities.jira_api import FAILED_LABEL, is_cloud, jira_client, statuses
from contracts import temporal as t
from contracts.discussion import MRDiscussionInput
from contracts.ids import discussion_id, implement_id, review_id
from contracts.implement import ImplementIssueInput, PollGitLabResult, PollJiraResult
from contracts.models import ReviewMRInput, Trigger
from contracts.settings import Settings
from core.poll_notes import Agent, notes_to_answer

log = logging.getLogger(__name__)
PAGE_SIZE = 50
MAX_ISSUES_PER_POLL = 500
MAX_MRS_PER_PROJECT = 200
CLOCK_SKEW_OVERLAP = timedelta(minutes=2)
FIRST_POLL_LOOKBACK = timedelta(hours=24)
_PROJECT_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def poll_queries(settings: Settings, keys: set[str] | None = None) -> list[str]:
    """One JQL per trigger status, over the mapped projects that use it (only `keys` when given:
    those whose repository GITLAB_PROJECTS serves); failed issues excluded."""
    by_status: dict[str, list[str]] = {}
    for key, mapping in sorted(settings.project_map().items()):
        if not key or not set(key.upper()) <= _PROJECT_KEY:
            log.warning("JIRA_PROJECT_MAP key %r is not a Jira project key; not polled", key[:50])
            continue
        if keys is not None and key not in keys:
            continue
        by_status.setdefault(statuses(settings, mapping).trigger, []).append(key.upper())
    return [
        f"project in ({', '.join(keys)}) AND status = {_jql_string(status)} "
        f"AND (labels is EMPTY OR labels != {_jql_string(FAILED_LABEL)}) ORDER BY created ASC"
        for status, keys in by_status.items()
    ]


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _search_keys(client: JIRA, jql: str, limit: int) -> list[str]:
    """Issue keys matching `jql`, page by page: the enhanced search (`search/jql`, Jira Cloud) with
    `nextPageToken`, or the classic offset search where that endpoint does not exist (Server/DC)."""
    keys: list[str] = []
    token: str | None = None
    classic = not is_cloud(client)  # Server/DC (known from JIRA_DEPLOYMENT or serverInfo) has no search/jql
    while len(keys) < limit:
        params: dict[str, Any] = {"jql": jql, "fields": "key", "maxResults": PAGE_SIZE}
        try:
            if classic:
                page = client._get_json("search", params={**params, "startAt": len(keys)})
            else:
                page = client._get_json("search/jql", params={**params, "nextPageToken": token})
        except JIRAError as exc:
            if exc.status_code != 404 or classic:
                raise
            classic = True
            continue
        issues = page.get("issues") or []
        keys += [str(issue["key"]) for issue in issues if isinstance(issue, dict) and issue.get("key")]
        if classic:
            if not issues or len(keys) >= int(page.get("total", 0)):
                break
        else:
            token = page.get("nextPageToken")
            if page.get("isLast", True) or not token:
                break
    return keys[:limit]


class PollingActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- Jira ------------------------------------------------------------------------------------
    def _served_mappings(self) -> tuple[set[str] | None, list[str]]:
        """The mapping keys whose GitLab project GITLAB_PROJECTS serves (None: no allowlist), and a
        note per key left out (seed fix #117: the allowlist is a hard boundary for the Jira poller
        too, so an issue of an unserved project is never moved to In Progress, cloned or pushed).
        A mapping that names its project in the allowlist's own form (path or ID) is decided
        without GitLab; the other form is looked up once per poll."""
        if not self.settings.gitlab_projects:
            return None, []
        allowed = {p.lower() for p in self.settings.gitlab_projects}
        served: set[str] = set()
        notes: list[str] = []
        for key, mapping in sorted(self.settings.project_map().items()):
            repo = mapping.repo.strip()
            if self.settings.serves_project_ref(repo):  # its own form, or resolved at worker start
                served.add(key)
                continue
            if not any(entry.isdigit() != repo.isdigit() for entry in allowed):  # same form: decided
                notes.append(f"{key[:50]}: project {repo[:100]!r} is not in GITLAB_PROJECTS; not polled")
                continue
            try:
                gl = gitlab_client(self.settings, mapping.credential_ref)
                project = gl.projects.get(repo)
            except gitlab.GitlabGetError as exc:
                if exc.response_code not in (403, 404):
                    raise
                notes.append(f"{key[:50]}: project {repo[:100]!r}: HTTP {exc.response_code}; not polled")
                continue
            if self.settings.serves_project(int(project.id), str(project.path_with_namespace)):
                served.add(key)
            else:
                notes.append(f"{key[:50]}: project {repo[:100]!r} is not in GITLAB_PROJECTS; not polled")
        for note in notes:
            log.warning("Jira poller: %s", note)
        return served, notes

    def _search(self) -> tuple[list[str], list[str]]:
        served, errors = self._served_mappings()
        if served is not None and not served:
            return [], errors
        client = jira_client(self.settings)
        keys: list[str] = []
        for jql in poll_queries(self.settings, served):
            try:
                keys += _search_keys(client, jql, MAX_ISSUES_PER_POLL - len(keys))
            except JIRAError as exc:
                if exc.status_code != 400:
                    raise
                # An unknown status or project in the mapping: report it, keep polling the rest.
                errors.append(f"{jql[:200]}: {str(exc.text)[:300]}")
        return list(dict.fromkeys(keys))[:MAX_ISSUES_PER_POLL], errors

    @activity.defn(name="poll_jira")
    @activity_errors
    async def poll_jira(self) -> PollJiraResult:
        keys, errors = await asyncio.to_thread(self._search)
        client: Client = activity.client()
        result = PollJiraResult(found=len(keys), errors=errors)
        for key in keys:
            try:
                await client.start_workflow(
                    "ImplementIssue",
                    ImplementIssueInput(issue_key=key, trigger=Trigger.POLLER),
                    id=implement_id(key),
                    task_queue=self.settings.temporal_task_queue,
                    # A run still going is never doubled; a finished one does not block a later run
                    # after a human moved the issue back to the trigger status.
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(t.JIRA_ISSUE_KEY, key),
                            SearchAttributePair(t.TRIGGER_SOURCE, Trigger.POLLER.value),
                        ]
                    ),
                )
                result.started.append(key)
            except WorkflowAlreadyStartedError:
                result.already_running += 1
            except ValueError as exc:  # a key the input model refuses
                result.errors.append(f"{key[:64]}: {str(exc)[:200]}")
        return result

    # --- GitLab ----------------------------------------------------------------------------------
    def _open_mrs(self, since: datetime) -> tuple[list[dict[str, Any]], list[str]]:
        found: list[dict[str, Any]] = []
        errors: list[str] = []
        for ref in self.settings.gitlab_projects:
            try:
                gl = project_client(self.settings, ref)  # each project with its own credential
                # the agent's own ID in this project: its notes and threads are recognised by it, as
                # the webhook does
                user = client_user(self.settings, gl)
                agent = Agent(id=user.id, username=user.username)
                project = gl.projects.get(ref)
            except gitlab.GitlabGetError as exc:
                if exc.response_code not in (403, 404):
                    raise
                errors.append(f"GITLAB_PROJECTS entry {ref[:100]!r}: HTTP {exc.response_code}")
                continue
            listing = project.mergerequests.list(
                state="opened",
                updated_after=since.isoformat().replace("+00:00", "Z"),
                order_by="updated_at",
                sort="asc",
                iterator=True,
            )
            for count, mr in enumerate(listing):
                if count >= MAX_MRS_PER_PROJECT:
                    break  # the watermark then stops at the last one seen; the next poll continues
                discussions = [d.attributes for d in mr.discussions.list(iterator=True)]
                found.append(
                    {
                        "project_id": project.id,
                        "iid": mr.iid,
                        "sha": mr.sha,
                        "updated_at": mr.updated_at,
                        "draft": bool(getattr(mr, "draft", False) or getattr(mr, "work_in_progress", False)),
                        "own": agent.wrote(mr.author),
                        "notes": notes_to_answer(discussions, agent, since),
                    }
                )
        return found, errors

    @activity.defn(name="poll_gitlab")
    @activity_errors
    async def poll_gitlab(self, watermark: str | None) -> PollGitLabResult:
        now = datetime.now(UTC)
        since = (_parse_ts(watermark) - CLOCK_SKEW_OVERLAP) if watermark else now - FIRST_POLL_LOOKBACK
        mrs, errors = await asyncio.to_thread(self._open_mrs, since)
        result = PollGitLabResult(watermark=watermark, since=since.isoformat(), seen=len(mrs), errors=errors)
        client: Client = activity.client()
        newest = _parse_ts(watermark) if watermark else None
        for mr in mrs:
            updated = _parse_ts(mr["updated_at"])
            newest = updated if newest is None or updated > newest else newest
            for note in mr["notes"]:
                await self._answer(client, mr, note, result)
            # The same filters as the webhook intake: drafts (unless REVIEW_DRAFTS), the agent's own MRs.
            if (mr["draft"] and not self.settings.review_drafts) or mr["own"] or not mr["sha"]:
                result.skipped += 1
                continue
            workflow_id = review_id(
                mr["project_id"], mr["iid"], mr["sha"], once=not self.settings.gitlab_review_on_push
            )
            try:
                await client.start_workflow(
                    "ReviewMR",
                    ReviewMRInput(
                        project_id=mr["project_id"],
                        mr_iid=mr["iid"],
                        head_sha=mr["sha"],
                        trigger=Trigger.POLLER,
                    ),
                    id=workflow_id,
                    task_queue=self.settings.temporal_task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    search_attributes=t.review_search_attributes(
                        mr["project_id"], mr["iid"], mr["sha"], Trigger.POLLER.value
                    ),
                )
                result.started.append(workflow_id)
            except WorkflowAlreadyStartedError:
                result.duplicates += 1  # the webhook (or an earlier poll) got there first
        result.watermark = newest.isoformat() if newest else None
        return result

    async def _answer(self, client: Client, mr: dict[str, Any], note: Any, result: PollGitLabResult) -> None:
        """Start MRDiscussion for a note exactly as the Note Hook intake does (ID, policies, attributes)."""
        workflow_id = discussion_id(mr["project_id"], note.note_id)
        try:
            await client.start_workflow(
                "MRDiscussion",
                MRDiscussionInput(
                    project_id=mr["project_id"],
                    mr_iid=mr["iid"],
                    note_id=note.note_id,
                    discussion_id=note.discussion_id,
                    trigger=Trigger.POLLER,
                ),
                id=workflow_id,
                task_queue=self.settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=t.review_search_attributes(
                    mr["project_id"], mr["iid"], None, Trigger.POLLER.value
                ),
            )
            result.answers_started.append(workflow_id)
        except WorkflowAlreadyStartedError:
            result.answer_duplicates += 1  # the webhook (or an earlier poll) got there first
