"""GitLab REST v4 JSON shapes for the stand-in's state."""

from __future__ import annotations

from typing import Any

from standins.gitlab.gitrepo import CommitInfo
from standins.gitlab.models import (
    AccessEntry,
    AwardEmoji,
    CommitStatus,
    Discussion,
    DraftNote,
    MergeRequest,
    Note,
    Project,
    ProtectedBranch,
    User,
    Version,
    ts_iso,
)
from standins.gitlab.positions import FileDiff


def user_full(user: User, base_url: str) -> dict[str, Any]:
    return {
        **user.ref(),
        "web_url": f"{base_url}/{user.username}",
        "email": f"{user.username}@standin.invalid",
        "is_admin": False,
        "bot": False,
    }


def project(p: Project, base_url: str) -> dict[str, Any]:
    web_url = f"{base_url}/{p.path_with_namespace}"
    return {
        "id": p.id,
        "name": p.name,
        "path": p.name,
        "path_with_namespace": p.path_with_namespace,
        "name_with_namespace": p.path_with_namespace.replace("/", " / "),
        "namespace": {"id": p.id, "name": p.namespace, "path": p.namespace, "full_path": p.namespace},
        "default_branch": p.default_branch,
        "visibility": "private",
        "web_url": web_url,
        "http_url_to_repo": f"{web_url}.git",
        "ssh_url_to_repo": f"git@standin:{p.path_with_namespace}.git",
        "created_at": p.created_at,
        "archived": False,
    }


def member(user: User, access_level: int, base_url: str) -> dict[str, Any]:
    return {
        **user.ref(),
        "web_url": f"{base_url}/{user.username}",
        "access_level": access_level,
        "expires_at": None,
        "created_at": None,
    }


def diff_refs(version: Version) -> dict[str, str]:
    return {"base_sha": version.base_sha, "start_sha": version.start_sha, "head_sha": version.head_sha}


def merge_request(mr: MergeRequest, base_url: str) -> dict[str, Any]:
    latest = mr.latest
    path = mr.project.path_with_namespace
    user_notes = sum(1 for d in mr.discussions for n in d.notes if not n.system)
    return {
        "id": mr.id,
        "iid": mr.iid,
        "project_id": mr.project.id,
        "title": mr.title,
        "description": mr.description,
        "state": mr.state,
        "created_at": mr.created_at,
        "updated_at": mr.updated_at,
        "merged_at": mr.merged_at,
        "closed_at": None,
        "target_branch": mr.target_branch,
        "source_branch": mr.source_branch,
        "source_project_id": mr.fork_project_id or mr.project.id,
        "target_project_id": mr.project.id,
        "author": mr.author.ref(),
        "assignees": [],
        "reviewers": [],
        "labels": [],
        "draft": mr.draft,
        "work_in_progress": mr.draft,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "draft_status" if mr.draft else "mergeable",
        "sha": latest.head_sha,
        "merge_commit_sha": None,
        "diff_refs": diff_refs(latest),
        "user_notes_count": user_notes,
        "upvotes": sum(1 for a in mr.awards if a.name == "thumbsup"),
        "downvotes": sum(1 for a in mr.awards if a.name == "thumbsdown"),
        "references": {"short": f"!{mr.iid}", "relative": f"!{mr.iid}", "full": f"{path}!{mr.iid}"},
        "web_url": f"{base_url}/{path}/-/merge_requests/{mr.iid}",
        "changes_count": str(len(latest.files)),
        "has_conflicts": False,
    }


def file_diff(f: FileDiff) -> dict[str, Any]:
    return {
        "old_path": f.old_path,
        "new_path": f.new_path,
        "a_mode": f.a_mode,
        "b_mode": f.b_mode,
        "diff": f.diff,
        "new_file": f.new_file,
        "renamed_file": f.renamed_file,
        "deleted_file": f.deleted_file,
        "generated_file": False,
    }


def version(v: Version, mr: MergeRequest) -> dict[str, Any]:
    return {
        "id": v.id,
        "head_commit_sha": v.head_sha,
        "base_commit_sha": v.base_sha,
        "start_commit_sha": v.start_sha,
        "created_at": v.created_at,
        "merge_request_id": mr.id,
        "state": "collected",
        "real_size": str(len(v.files)),
        "patch_id_sha": None,
    }


def commit(c: CommitInfo, project_path: str, base_url: str) -> dict[str, Any]:
    title = c.message.split("\n", 1)[0]
    return {
        "id": c.sha,
        "short_id": c.sha[:8],
        "title": title,
        "message": c.message,
        "author_name": c.author_name,
        "author_email": c.author_email,
        "authored_date": ts_iso(c.authored_ts),
        "committer_name": c.committer_name,
        "committer_email": c.committer_email,
        "committed_date": ts_iso(c.committed_ts),
        "created_at": ts_iso(c.committed_ts),
        "parent_ids": c.parents,
        "web_url": f"{base_url}/{project_path}/-/commit/{c.sha}",
    }


def note(n: Note, mr: MergeRequest) -> dict[str, Any]:
    return {
        "id": n.id,
        "type": n.type,
        "body": n.body,
        "attachment": None,
        "author": n.author.ref(),
        "created_at": n.created_at,
        "updated_at": n.updated_at,
        "system": n.system,
        "noteable_id": mr.id,
        "noteable_type": "MergeRequest",
        "noteable_iid": mr.iid,
        "project_id": mr.project.id,
        "commit_id": None,
        "position": n.position,
        "resolvable": n.resolvable,
        "resolved": n.resolved if n.resolvable else False,
        "resolved_by": n.resolved_by.ref() if n.resolved_by else None,
        "resolved_at": n.resolved_at,
        "confidential": False,
        "internal": False,
        "commands_changes": {},
    }


def discussion(d: Discussion, mr: MergeRequest) -> dict[str, Any]:
    return {"id": d.id, "individual_note": d.individual_note, "notes": [note(n, mr) for n in d.notes]}


def award(a: AwardEmoji) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "user": a.user.ref(),
        "created_at": a.created_at,
        "updated_at": a.created_at,
        "awardable_id": a.awardable_id,
        "awardable_type": a.awardable_type,
    }


_LEVELS = {0: "No one", 30: "Developers + Maintainers", 40: "Maintainers", 60: "Admins"}


def _access(entry: AccessEntry, index: int, store: Any) -> dict[str, Any]:
    if entry.user_id is not None:
        description = store.users[entry.user_id].name
    elif entry.group_id is not None:
        description = store.groups[entry.group_id].path
    else:
        description = _LEVELS.get(entry.access_level or 0, "")
    return {
        "id": index,
        "access_level": entry.access_level if entry.access_level is not None else 40,
        "access_level_description": description,
        "deploy_key_id": None,
        "user_id": entry.user_id,
        "group_id": entry.group_id,
    }


def protected_branch(rule: ProtectedBranch, store: Any) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "push_access_levels": [_access(e, rule.id * 100 + i, store) for i, e in enumerate(rule.push)],
        "merge_access_levels": [_access(e, rule.id * 100 + 50 + i, store) for i, e in enumerate(rule.merge)],
        "unprotect_access_levels": [],
        "allow_force_push": rule.allow_force_push,
        "code_owner_approval_required": False,
        "inherited": False,
    }


def draft_note(d: DraftNote, mr: MergeRequest) -> dict[str, Any]:
    empty = {
        "base_sha": None, "start_sha": None, "head_sha": None, "old_path": None, "new_path": None,
        "position_type": "text", "old_line": None, "new_line": None, "line_range": None,
    }  # fmt: skip
    return {
        "id": d.id,
        "author_id": d.author.id,
        "merge_request_id": mr.id,
        "resolve_discussion": d.resolve_discussion,
        "discussion_id": d.discussion_id,
        "note": d.note,
        "commit_id": d.commit_id,
        "line_code": None,
        "position": {**empty, **(d.position or {})},
    }


def commit_status(s: CommitStatus) -> dict[str, Any]:
    return {
        "id": s.id,
        "sha": s.sha,
        "ref": s.ref,
        "status": s.status,
        "name": s.name,
        "target_url": s.target_url,
        "description": s.description,
        "created_at": s.created_at,
        "started_at": s.started_at,
        "finished_at": s.finished_at,
        "allow_failure": False,
        "coverage": None,
        "pipeline_id": None,
        "author": s.author.ref(),
    }
