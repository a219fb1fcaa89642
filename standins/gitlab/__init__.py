"""A stateful GitLab stand-in: REST v4 subset for python-gitlab and git smart HTTP for git."""

from standins.gitlab.models import AccessEntry
from standins.gitlab.server import GitLabStandIn

__all__ = ["AccessEntry", "GitLabStandIn"]
