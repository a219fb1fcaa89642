"""The Jira poller's JQL: one query per trigger status, values quoted, failed issues excluded."""

from __future__ import annotations

from activities.polling import poll_queries
from contracts.settings import Settings


def test_one_query_per_trigger_status_with_quoting_and_bad_keys_skipped():
    settings = Settings(
        _env_file=None,
        jira_project_map={
            "PROJ": {"repo": "g/a"},
            "OPS": {"repo": "g/b", "trigger_status": 'Ready "for" AI\\'},
            "bad key) OR 1=1": {"repo": "g/c"},
        },
    )
    assert poll_queries(settings) == [
        'project in (OPS) AND status = "Ready \\"for\\" AI\\\\" '
        'AND (labels is EMPTY OR labels != "copilot-agent-failed") ORDER BY created ASC',
        'project in (PROJ) AND status = "AI Ready" '
        'AND (labels is EMPTY OR labels != "copilot-agent-failed") ORDER BY created ASC',
    ]


def test_only_mappings_whose_project_gitlab_projects_serves_are_queried():
    settings = Settings(
        _env_file=None,
        gitlab_projects=["g/a"],
        jira_project_map={"PROJ": {"repo": "g/a"}, "OPS": {"repo": "g/b"}},
    )
    (query,) = poll_queries(settings, {"PROJ"})
    assert query.startswith("project in (PROJ) AND")
    assert poll_queries(settings, set()) == []
