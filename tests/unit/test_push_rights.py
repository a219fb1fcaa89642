"""GitLab's protected-branch push rule, applied to the person who asked (core/push_rights.py)."""

from __future__ import annotations

from core.push_rights import push_refusal

DEV, MAINT = 30, 40


def rule(name, *entries):
    return {"name": name, "push_access_levels": list(entries)}


def role(level):
    return {"access_level": level, "user_id": None, "group_id": None, "deploy_key_id": None}


def refusal(rules, branch="main", level=DEV, user_id=5, member_of=frozenset()):
    return push_refusal(
        rules, branch, username="dev", user_id=user_id, access_level=level, member_of=set(member_of)
    )


def test_unprotected_branch_takes_developer():
    assert refusal([rule("release-*", role(MAINT))], branch="feature") == ""
    assert "Developer role" in refusal([], branch="feature", level=20)


def test_maintainers_only_refuses_a_developer_and_says_why():
    reason = refusal([rule("main", role(MAINT))])
    assert "`main` is a protected branch (`main`)" in reason and "@dev is not allowed" in reason
    assert refusal([rule("main", role(MAINT))], level=MAINT) == ""


def test_wildcards_match_slashes_and_the_most_permissive_rule_wins():
    rules = [rule("release/*", role(MAINT)), rule("release/1.*", role(DEV))]
    assert refusal(rules, branch="release/1.2/hotfix") == ""
    assert "protected" in refusal(rules, branch="release/2.0")


def test_no_one_admins_users_groups_and_deploy_keys():
    assert "protected" in refusal([rule("main", role(0))], level=50)
    assert "protected" in refusal([rule("main", role(60))], level=50)
    user = {"access_level": 40, "user_id": 5, "group_id": None, "deploy_key_id": None}
    assert refusal([rule("main", user)]) == ""
    assert "protected" in refusal([rule("main", user)], level=20)  # must be at least Developer
    group = {"access_level": 40, "user_id": None, "group_id": 9, "deploy_key_id": None}
    assert refusal([rule("main", group)], member_of={9}) == ""
    assert "protected" in refusal([rule("main", group)])
    key = {"access_level": 40, "user_id": None, "group_id": None, "deploy_key_id": 3}
    assert "protected" in refusal([rule("main", key)], level=MAINT)


def test_unknown_requester_never_gets_a_push():
    assert "could not tell who asked" in refusal([], user_id=None)
