"""Note Hook → MRDiscussion, keyed by project and note ID (`discussion:<project>:<note>`).

Decision: the API filters only what the payload proves cheaply, and the workflow's first activity
(`discussion_context`) decides the rest with GitLab's data. Whether a note replies in a thread the
agent posted in needs the discussion, which the Note Hook does not carry; looking it up here would
put a GitLab round trip (and GitLab's availability) inside the webhook's ~10 s budget, while a
workflow that ends "ignored" after one GitLab call is cheap, durable, retried and visible in the UI.

So this handler ignores (200 {"status": "ignored"}): notes outside GITLAB_PROJECTS, notes on issues,
commits and snippets, system notes, notes on closed or merged MRs, notes by the agent itself (by
user ID, by username, or carrying one of the agent's hidden markers), and standalone comments that
do not @mention the agent (they cannot be replies). Everything else starts the workflow: mentions,
and replies in any thread (DiscussionNote/DiffNote). When the agent's identity is unknown (GitLab
unreachable), every MR note in a thread or with a mention-like text is left to the workflow.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from api.events import NoteHook
from api.intake_mr import project_allowed
from api.starter import ignored, start_workflow
from contracts import temporal as t
from contracts.discussion import MRDiscussionInput
from contracts.ids import discussion_id
from contracts.models import Trigger
from contracts.settings import Settings
from core import markers
from core.mentions import mentions

_DISCUSSION_ID = re.compile(r"^[0-9a-f]{8,64}$")
_THREADED = ("DiscussionNote", "DiffNote")
PREFIX_MARKER = f"<!-- {markers.PREFIX}:"


def _rejected(reason: str) -> JSONResponse:
    return JSONResponse({"status": "rejected", "reason": f"invalid note event: {reason}"}, 400)


async def handle_note(request: Request, payload: dict[str, Any]) -> JSONResponse:
    settings: Settings = request.app.state.settings
    hook = NoteHook.model_validate(payload)
    attrs = hook.object_attributes

    if not project_allowed(settings, hook.project.id, hook.project.path_with_namespace):
        return ignored(f"project {hook.project.id} is not in GITLAB_PROJECTS")
    if attrs.noteable_type != "MergeRequest":
        kind = re.sub(r"[^A-Za-z]", "", attrs.noteable_type)[:30] or "unknown"
        return ignored(f"note on {kind}, not on a merge request")
    mr = hook.merge_request
    if mr is None:
        return _rejected("merge_request: required for a merge request note")
    if attrs.system:
        return ignored("system note")
    if mr.state not in ("opened", ""):
        return ignored(f"merge request is {mr.state[:30]}")
    if PREFIX_MARKER in attrs.note:
        return ignored("note carries the agent's marker (written by the agent)")

    agent = await request.app.state.identity.get(hook.project.path_with_namespace)
    author_id = attrs.author_id if attrs.author_id is not None else hook.user.id
    if agent is not None:
        by_id = agent.id is not None and author_id == agent.id
        if by_id or hook.user.username.lower() == agent.username.lower():
            return ignored("note written by the agent")
        if not mentions(attrs.note, agent.username) and attrs.type not in _THREADED:
            return ignored(f"note does not mention @{agent.username} and is not a reply in a thread")
    elif attrs.type not in _THREADED and "@" not in attrs.note:
        return ignored("note neither mentions anyone nor is a reply in a thread")

    given = attrs.discussion_id or ""
    workflow_id = discussion_id(hook.project.id, attrs.id)
    return await start_workflow(
        request.app.state.temporal,
        "MRDiscussion",
        MRDiscussionInput(
            project_id=hook.project.id,
            mr_iid=mr.iid,
            note_id=attrs.id,
            # a malformed ID is looked up by the workflow rather than trusted
            discussion_id=given if _DISCUSSION_ID.match(given) else None,
            trigger=Trigger.WEBHOOK,
        ),
        workflow_id=workflow_id,
        task_queue=settings.temporal_task_queue,
        search_attributes=t.review_search_attributes(hook.project.id, mr.iid, None, Trigger.WEBHOOK.value),
    )
