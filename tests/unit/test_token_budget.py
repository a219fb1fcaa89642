"""The tokens one agent run counts against its project's daily budget, and the slots' state shape."""

from __future__ import annotations

from pydantic import TypeAdapter

from contracts.agent_tasks import TokenUsage, tokens_used
from contracts.slots import SlotsState


def test_a_run_counts_prompt_and_completion_tokens():
    assert tokens_used(TokenUsage(prompt_tokens=1200, completion_tokens=80)) == 1280


def test_a_run_without_reported_usage_counts_nothing():
    assert tokens_used(None) == 0


def test_state_from_before_the_token_budget_still_loads():
    """A slots workflow continued-as-new by an older worker carries no token or fork fields."""
    old = {
        "limit": 2,
        "holders": ["a"],
        "waiting": [],
        "daily_cap": 5,
        "day": "2026-12-01",
        "granted_today": 3,
    }
    state = TypeAdapter(SlotsState).validate_python(old)
    assert (state.token_cap, state.tokens_today, state.fork_cap, state.fork_reviews_today) == (0, 0, 0, {})
