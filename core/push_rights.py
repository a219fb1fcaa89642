"""May this user push to this branch? GitLab's protected-branch rule, decided from the API's data. Pure.

The service pushes with its own account, which usually may push where the requester may not (a
Developer asking for a change on an MR whose source branch is `main` or `release/*`). So before it
pushes for someone, it applies GitLab's rule to that person (`GET /projects/:id/protected_branches`):

- a branch no rule matches: Developer and above may push;
- otherwise the most permissive matching rule decides (GitLab: a rule's `*` matches any characters,
  `/` included): its `push_access_levels` let a role (30 Developers + Maintainers, 40 Maintainers;
  0 No one and 60 Admins let no member), a user (who must be a member with at least Developer), or
  a group's members push. Deploy keys never stand for a person. `allow_force_push` is irrelevant:
  the service never forces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.outbound_text import code_span

DEVELOPER = 30
MAINTAINER = 40


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in name.split("*")))


def matching_rules(rules: Iterable[Mapping[str, Any]], branch: str) -> list[Mapping[str, Any]]:
    return [r for r in rules if _pattern(str(r.get("name", ""))).fullmatch(branch)]


def push_groups(rules: Iterable[Mapping[str, Any]]) -> set[int]:
    """The groups whose membership the rules ask about."""
    return {
        int(entry["group_id"])
        for rule in rules
        for entry in rule.get("push_access_levels") or []
        if entry.get("group_id") is not None
    }


def _entry_allows(entry: Mapping[str, Any], user_id: int, level: int, groups: set[int]) -> bool:
    if entry.get("deploy_key_id") is not None:
        return False
    if entry.get("user_id") is not None:
        return int(entry["user_id"]) == user_id and level >= DEVELOPER
    if entry.get("group_id") is not None:
        return int(entry["group_id"]) in groups
    needed = int(entry.get("access_level") or 0)
    return DEVELOPER <= needed <= MAINTAINER and level >= needed


def push_refusal(
    rules: Sequence[Mapping[str, Any]],
    branch: str,
    *,
    username: str,
    user_id: int | None,
    access_level: int,
    member_of: set[int],
) -> str:
    """Why `username` may not push to `branch` under `rules` (all of the project's), "" if they may."""
    if user_id is None:
        return f"I could not tell who asked, so I do not push to {code_span(branch)} for them"
    matching = matching_rules(rules, branch)
    if not matching:
        if access_level >= DEVELOPER:
            return ""
        return f"@{username} may not push to {code_span(branch)} (it needs at least the Developer role)"
    for rule in matching:
        if any(
            _entry_allows(e, user_id, access_level, member_of) for e in rule.get("push_access_levels") or []
        ):
            return ""
    names = ", ".join(code_span(str(r.get("name"))) for r in matching)
    return (
        f"{code_span(branch)} is a protected branch ({names}) and @{username} is not allowed to push to it, "
        "so I do not push there for them"
    )
