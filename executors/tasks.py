"""Old home of the agent task and result types; they are contracts now (contracts/agent_tasks.py)."""

from contracts.agent_tasks import (
    MAX_TEXT,
    AgentResult,
    AgentTask,
    DiscussionTask,
    DismissedThread,
    ImplementTask,
    PlanTask,
    PriorThread,
    RepoRef,
    ReviewScope,
    ReviewTask,
    SkippedFile,
    TestEvidence,
    TokenUsage,
)

__all__ = [
    "MAX_TEXT",
    "AgentResult",
    "AgentTask",
    "DiscussionTask",
    "DismissedThread",
    "ImplementTask",
    "PlanTask",
    "PriorThread",
    "RepoRef",
    "ReviewScope",
    "ReviewTask",
    "SkippedFile",
    "TestEvidence",
    "TokenUsage",
]
