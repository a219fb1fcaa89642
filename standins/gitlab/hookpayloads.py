"""Webhook payload shapes (Merge Request Hook, Note Hook) as GitLab sends them."""

from __future__ import annotations

from typing import Any

from standins.gitlab.models import MergeRequest, Note, User, now_iso


def _project(mr: MergeRequest, base_url: str) -> dict[str, Any]:
    path = mr.project.path_with_namespace
    web_url = f"{base_url}/{path}"
    return {
        "id": mr.project.id,
        "name": mr.project.name,
        "namespace": mr.project.namespace,
        "path_with_namespace": path,
        "default_branch": mr.project.default_branch,
        "web_url": web_url,
        "git_http_url": f"{web_url}.git",
        "git_ssh_url": f"git@standin:{path}.git",
        "visibility_level": 0,
    }


def _user(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "username": user.username,
        "avatar_url": None,
        "email": "[REDACTED]",
    }


def _mr_attributes(mr: MergeRequest, base_url: str) -> dict[str, Any]:
    return {
        "id": mr.id,
        "iid": mr.iid,
        "title": mr.title,
        "description": mr.description,
        "source_branch": mr.source_branch,
        "target_branch": mr.target_branch,
        "source_project_id": mr.fork_project_id or mr.project.id,
        "target_project_id": mr.project.id,
        "author_id": mr.author.id,
        "state": mr.state,
        "draft": mr.draft,
        "work_in_progress": mr.draft,
        "created_at": mr.created_at,
        "updated_at": mr.updated_at,
        "last_commit": {"id": mr.latest.head_sha},
        "url": f"{base_url}/{mr.project.path_with_namespace}/-/merge_requests/{mr.iid}",
    }


def merge_request_hook(
    mr: MergeRequest, actor: User, action: str, base_url: str, *, oldrev: str | None = None
) -> dict[str, Any]:
    attributes = {**_mr_attributes(mr, base_url), "action": action}
    if oldrev:
        attributes["oldrev"] = oldrev
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": _user(actor),
        "project": _project(mr, base_url),
        "repository": {"name": mr.project.name, "url": f"{base_url}/{mr.project.path_with_namespace}.git"},
        "object_attributes": attributes,
        "labels": [],
        "changes": {},
    }


def note_hook(mr: MergeRequest, note: Note, base_url: str) -> dict[str, Any]:
    mr_url = f"{base_url}/{mr.project.path_with_namespace}/-/merge_requests/{mr.iid}"
    return {
        "object_kind": "note",
        "event_type": "note",
        "user": _user(note.author),
        "project_id": mr.project.id,
        "project": _project(mr, base_url),
        "object_attributes": {
            "id": note.id,
            "note": note.body,
            "noteable_type": "MergeRequest",
            "noteable_id": mr.id,
            "author_id": note.author.id,
            "project_id": mr.project.id,
            "created_at": note.created_at,
            "updated_at": now_iso(),
            "system": note.system,
            "type": note.type,
            "discussion_id": note.discussion_id,
            "position": note.position,
            "original_position": note.position,
            "resolvable": note.resolvable,
            "action": "create",
            "url": f"{mr_url}#note_{note.id}",
        },
        "merge_request": _mr_attributes(mr, base_url),
    }
