"""Deterministic orchestration. Every workflow the worker runs is listed here."""

from workflows.agent_slots import ProjectAgentSlots
from workflows.diagnose import Diagnose
from workflows.implement_issue import ImplementIssue
from workflows.mr_discussion import MRDiscussion
from workflows.poll_gitlab import PollGitLab
from workflows.poll_jira import PollJira
from workflows.project_learnings import ProjectLearnings
from workflows.review_bundle import ReviewBundle
from workflows.review_mr import ReviewMR

WORKFLOWS: list[type] = [
    ProjectAgentSlots,
    Diagnose,
    ReviewMR,
    ReviewBundle,
    ImplementIssue,
    PollJira,
    PollGitLab,
    MRDiscussion,
    ProjectLearnings,
]
