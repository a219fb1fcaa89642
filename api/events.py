"""The parts of GitLab webhook payloads the service reads, parsed leniently.

GitLab's payloads differ across versions (older ones lack `draft`, `oldrev` only comes with pushes),
so every field we do not strictly need has a default, and unknown fields are ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class HookUser(_Lenient):
    id: int | None = None
    username: str = ""


class HookProject(_Lenient):
    id: int = Field(gt=0)
    path_with_namespace: str = ""


class LastCommit(_Lenient):
    id: str = ""


class MRAttributes(_Lenient):
    iid: int = Field(gt=0)
    action: str = ""
    state: str = "opened"
    oldrev: str | None = None
    draft: bool | None = None
    work_in_progress: bool | None = None
    title: str = ""
    author_id: int | None = None
    source_project_id: int | None = None
    target_project_id: int | None = None
    last_commit: LastCommit = Field(default_factory=LastCommit)

    @property
    def is_draft(self) -> bool:
        if self.draft is not None:
            return self.draft
        return bool(self.work_in_progress) or self.title.lower().startswith(("draft:", "[draft]", "wip:"))


class MergeRequestHook(_Lenient):
    object_kind: str
    user: HookUser = Field(default_factory=HookUser)
    project: HookProject
    object_attributes: MRAttributes
    changes: dict[str, Any] = Field(default_factory=dict)

    def turned_ready(self) -> bool:
        """True for the update that takes an MR out of draft (GitLab reports it in `changes`)."""
        for key in ("draft", "work_in_progress"):
            change = self.changes.get(key)
            if isinstance(change, dict) and change.get("previous") is True and change.get("current") is False:
                return True
        title = self.changes.get("title")
        if isinstance(title, dict):
            before, after = str(title.get("previous", "")), str(title.get("current", ""))
            return before.lower().startswith(("draft:", "wip:")) and not after.lower().startswith(
                ("draft:", "wip:")
            )
        return False


class NoteAttributes(_Lenient):
    id: int = Field(gt=0)
    note: str = ""
    noteable_type: str = ""
    system: bool = False
    discussion_id: str | None = None
    type: str | None = None
    author_id: int | None = None


class NoteMR(_Lenient):
    iid: int = Field(gt=0)
    state: str = "opened"
    source_project_id: int | None = None
    target_project_id: int | None = None


class NoteHook(_Lenient):
    object_kind: str
    user: HookUser = Field(default_factory=HookUser)
    project: HookProject
    object_attributes: NoteAttributes
    merge_request: NoteMR | None = None
