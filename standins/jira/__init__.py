"""A stateful fake Jira Cloud (REST v2/v3 subset) for tests and the demo; see `server.JiraStandIn`."""

from standins.jira.models import (
    Account,
    Comment,
    Issue,
    JiraApiError,
    RemoteLink,
    RequestRecord,
    Transition,
    TransitionRecord,
    User,
)
from standins.jira.server import JiraStandIn

__all__ = [
    "Account",
    "Comment",
    "Issue",
    "JiraApiError",
    "JiraStandIn",
    "RemoteLink",
    "RequestRecord",
    "Transition",
    "TransitionRecord",
    "User",
]
