"""Merge Request Hook → ReviewMR, keyed by project, MR IID and head SHA."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from api.events import MergeRequestHook
from api.starter import ignored, start_workflow
from contracts import temporal as t
from contracts.ids import review_id
from contracts.models import ReviewMRInput, Trigger
from contracts.settings import Settings

_SHA = frozenset("0123456789abcdef")


def project_allowed(settings: Settings, project_id: int, path: str) -> bool:
    return settings.serves_project(project_id, path)


async def handle_merge_request(request: Request, payload: dict[str, Any]) -> JSONResponse:
    settings: Settings = request.app.state.settings
    hook = MergeRequestHook.model_validate(payload)
    attrs = hook.object_attributes

    if not project_allowed(settings, hook.project.id, hook.project.path_with_namespace):
        return ignored(f"project {hook.project.id} is not in GITLAB_PROJECTS")
    if attrs.state not in ("opened", ""):
        return ignored(f"merge request is {attrs.state}")

    turned_ready = hook.turned_ready()
    if attrs.action in ("open", "reopen"):
        pass
    elif attrs.action == "update":
        if not attrs.oldrev and not turned_ready:
            return ignored("update without new commits")
    else:
        return ignored(f"action '{attrs.action[:30]}' not handled")

    forked = attrs.source_project_id is not None and attrs.source_project_id != hook.project.id
    if forked and not settings.review_forks:
        return ignored("merge request from a fork (REVIEW_FORKS=false)")
    if attrs.is_draft and not settings.review_drafts:
        return ignored("draft merge request (set REVIEW_DRAFTS=true to review drafts)")

    agent = await request.app.state.identity.get(hook.project.path_with_namespace)
    if agent is not None and agent.id is not None and attrs.author_id == agent.id:
        return ignored("merge request authored by the agent")

    head_sha = attrs.last_commit.id.lower()
    if not (7 <= len(head_sha) <= 64 and set(head_sha) <= _SHA):
        return JSONResponse(
            {"status": "rejected", "reason": "invalid merge_request event: object_attributes.last_commit.id"},
            400,
        )

    workflow_id = review_id(hook.project.id, attrs.iid, head_sha, once=not settings.gitlab_review_on_push)
    trigger = Trigger.WEBHOOK
    return await start_workflow(
        request.app.state.temporal,
        "ReviewMR",
        ReviewMRInput(project_id=hook.project.id, mr_iid=attrs.iid, head_sha=head_sha, trigger=trigger),
        workflow_id=workflow_id,
        task_queue=settings.temporal_task_queue,
        search_attributes=t.review_search_attributes(hook.project.id, attrs.iid, head_sha, trigger.value),
    )
